// Package pythontest gives tests that run Python plugins the interpreter
// the host would use, or skips them when this machine has none.
package pythontest

import (
	"context"
	"os"
	"testing"

	"github.com/pluginpool/pluginpool/internal/python"
)

// EnvRequire, set to 1 (as .ci/run does), turns a missing interpreter into
// a test failure instead of a skip, so CI cannot pass without running the
// Python tests.
const EnvRequire = "PLUGINPOOL_REQUIRE_PYTHON"

// Interpreter returns the Python that runs `.py` plugins in dir on this
// machine. Without one it skips t, saying why, unless EnvRequire is set.
// `make test` prints a banner when the Python tests are skipped.
func Interpreter(t testing.TB, dir string) python.Interpreter {
	t.Helper()
	py, err := python.Find(context.Background(), dir)
	if err != nil {
		if os.Getenv(EnvRequire) == "1" {
			t.Fatalf("%s=1 but %v", EnvRequire, err)
		}
		t.Skipf("SKIPPED: Python plugin tests need a Python with grpcio and protobuf: %v", err)
	}
	return py
}
