// Package testkit holds what the tests of several packages need alike, so
// that each package's tests keep only their own fixtures and cases:
//
//   - fixture plugins: the test binary re-executed as a plugin
//     (ServeFixture in TestMain, Fixture for its pool.Config), and the
//     real plugins and CLI built once (Build);
//   - waiting on conditions with generous deadlines, never on sleeps
//     (Eventually, Bounded), and goleak at the end (Run);
//   - processes: live or zombie (Alive), found by executable or
//     environment (Processes), and how they exited (ExitStatus);
//   - buffers written by several goroutines (Buffer, LogOnFailure),
//     counters across processes (Count, Counted, MarkerOnce), files and
//     inputs (WriteFile, DirNames, Numbers, FailingWriter), and double's
//     answers (Ints, CheckDoubled).
//
// Only tests import it.
package testkit
