package testkit

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"go.uber.org/goleak"

	"github.com/pluginpool/pluginpool/sdk"
)

// The packages tests build and run as real processes.
const (
	Double  = "github.com/pluginpool/pluginpool/plugins/double"
	Printer = "github.com/pluginpool/pluginpool/plugins/printer"
	CLI     = "github.com/pluginpool/pluginpool/host/cmd/pluginpool"
)

// ServeFixture serves a fixture plugin and exits, when this test binary
// was started by a pool as a plugin (go-plugin's magic cookie is set):
// serve gets the value of modeEnv, which says which fixture, and must not
// return (sdk.Serve does not). Otherwise it returns at once. Call it first
// in TestMain: fixture plugins are the test binary itself, re-executed.
func ServeFixture(modeEnv string, serve func(mode string)) {
	if os.Getenv(sdk.Handshake.MagicCookieKey) != sdk.Handshake.MagicCookieValue {
		return
	}
	serve(os.Getenv(modeEnv))
	os.Exit(0) // sdk.Serve exits itself; a fixture that returns is done
}

// Build builds pkgs into a new temporary directory with one go build (it
// builds them in parallel), and returns the directory.
func Build(pkgs ...string) (string, error) {
	dir, err := os.MkdirTemp("", "pluginpool-test-")
	if err != nil {
		return "", err
	}
	cmd := exec.Command(GoTool(), append([]string{"build", "-o", dir + string(filepath.Separator)}, pkgs...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("building %v: %v\n%s", pkgs, err, out)
	}
	return dir, nil
}

// GoTool is the go command of the toolchain running the tests.
func GoTool() string {
	if p := filepath.Join(runtime.GOROOT(), "bin", "go"); fileExists(p) {
		return p
	}
	return "go"
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// Run runs m's tests and then checks that they left no goroutine behind
// (goleak): every pool, executor and server a test started must be gone.
// It returns the exit code for os.Exit.
func Run(m *testing.M) int {
	if code := m.Run(); code != 0 {
		return code
	}
	if err := goleak.Find(); err != nil {
		fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
		return 1
	}
	return 0
}
