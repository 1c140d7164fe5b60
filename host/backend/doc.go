// Package backend is the seam between what asks for work to be done (the
// CLI, pipelines, Go programs) and where it runs. It owns the contract
// every back-end keeps and nothing else:
//
//   - Executor, the interface a back-end implements: Map, Apply, Imap and
//     ImapUnordered over opaque items, Stats, Close and Terminate;
//   - StartFunc, how a caller asks for an Executor without knowing which
//     back-end it gets;
//   - Result, the one outcome every item ends as, and Stats;
//   - Info and Describer, for executors that can say what their plugin
//     reported about itself (a local pool can; a cluster's cannot);
//   - the error values items and calls fail with, the same on every
//     back-end (ErrTask, ErrCrashed, ErrTimeout, ErrTooLarge, ErrNotRun,
//     ErrDegraded, ErrClosed, ErrStart, ...).
//
// Two back-ends implement it: host/pool runs a plugin's items on local
// processes (pool.Starter), host/cluster on the workers of a NATS
// JetStream cluster (cluster.Starter). host/pipeline and the CLI run
// against Executor only; package pool re-exports these names (pool.Result
// is backend.Result), so a Go program that uses one back-end needs one
// import.
//
// The package has no dependencies beyond the standard library and starts
// nothing itself.
package backend
