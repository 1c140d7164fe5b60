package testkit

import (
	"os"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/pluginpool/pluginpool/host/pool"
)

// Fixture returns the pool.Config of a fixture plugin this test binary
// serves (see ServeFixture): named name, with modeEnv=mode in its
// environment, and env. What the plugin writes outside the SDK and the
// pool's log go to a buffer that is logged if t fails (t.Log would panic
// on a line that arrives after the test ended).
func Fixture(t testing.TB, name, modeEnv, mode string, env ...string) pool.Config {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	out := LogOnFailure(t, name)
	return pool.Config{
		Path: exe,
		Name: name,
		// A race-built helper process sleeps a second at exit without it.
		Env:    append([]string{modeEnv + "=" + mode, "GORACE=atexit_sleep_ms=0"}, env...),
		Stderr: out,
		Logger: Logger(out),
	}
}

// LogOnFailure returns a buffer for a pool's log and its plugins' output,
// which t logs, under what, if it fails.
func LogOnFailure(t testing.TB, what string) *Buffer {
	out := &Buffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s: plugin stderr and pool log:\n%s", what, out.String())
		}
	})
	return out
}

// Logger is a logger of warnings and up that writes to out.
func Logger(out *Buffer) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: "test", Level: hclog.Warn, Output: out})
}
