package python_test

import (
	"os"
	"os/exec"
	"testing"

	"github.com/pluginpool/pluginpool/internal/python/pythontest"
)

// TestUnit runs the Python SDK's own unit tests (sdk/python/tests) with the
// interpreter the host would run Python plugins with.
func TestUnit(t *testing.T) {
	py := pythontest.Interpreter(t, ".")
	cmd := exec.Command(py.Path, "-m", "unittest", "discover", "-s", "tests")
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s -m unittest: %v\n%s", py.Path, err, out)
	}
	t.Logf("%s", out)
}
