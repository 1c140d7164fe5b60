package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.uber.org/goleak"

	"github.com/pluginpool/pluginpool/host/cluster"
	"github.com/pluginpool/pluginpool/host/pool"
	"github.com/pluginpool/pluginpool/sdk"
)

// The tests run real processes: an embedded NATS server (in process, or
// `pluginpool server`), workers (in process for the library tests, the
// built `pluginpool worker` for the end-to-end ones) and plugins: the real
// double, built once by TestMain with the CLI, and fixture plugins served
// by this test binary itself when go-plugin's cookie is set, picked by
// CLUSTERTEST_FIXTURE.
const fixtureEnv = "CLUSTERTEST_FIXTURE"

var binDir string // pluginpool, double, printer

func TestMain(m *testing.M) {
	if os.Getenv(sdk.Handshake.MagicCookieKey) == sdk.Handshake.MagicCookieValue {
		serveFixture(os.Getenv(fixtureEnv))
		os.Exit(1)
	}
	os.Exit(setupAndRun(m))
}

func setupAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "pluginpool-cluster-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binDir = dir
	build := exec.Command(goTool(), "build", "-o", dir+string(filepath.Separator),
		"github.com/pluginpool/pluginpool/plugins/double",
		"github.com/pluginpool/pluginpool/plugins/printer",
		"github.com/pluginpool/pluginpool/host/cmd/pluginpool")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building the plugins and the CLI: %v\n%s", err, out)
		return 1
	}
	if code := m.Run(); code != 0 {
		return code
	}
	if err := goleak.Find(); err != nil {
		fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
		return 1
	}
	return 0
}

func goTool() string {
	if p := filepath.Join(runtime.GOROOT(), "bin", "go"); fileExists(p) {
		return p
	}
	return "go"
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// serveFixture serves a fixture plugin in this process.
func serveFixture(mode string) {
	p := sdk.Plugin{Name: mode, Version: "1.0.0", Idempotent: true}
	double := sdk.Func(func(ctx context.Context, n int) (int, error) { return 2 * n, nil })
	switch mode {
	case "sleepy": // sleeps CLUSTERTEST_SLEEP per item, then doubles
		d, _ := time.ParseDuration(os.Getenv("CLUSTERTEST_SLEEP"))
		p.Task = sdk.Func(func(ctx context.Context, n int) (int, error) {
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return 0, ctx.Err()
			}
			return 2 * n, nil
		})
	case "once": // not idempotent; sleeps like sleepy
		d, _ := time.ParseDuration(os.Getenv("CLUSTERTEST_SLEEP"))
		p.Idempotent = false
		p.Task = sdk.Func(func(ctx context.Context, n int) (int, error) {
			time.Sleep(d)
			return 2 * n, nil
		})
	case "echo": // returns its input as is, prints a line for each
		p.Task = sdk.Raw(func(ctx context.Context, in []byte) ([]byte, error) {
			sdk.Printf(ctx, "got %d bytes", len(in))
			if string(in) == `"fail"` {
				return nil, errors.New("asked to fail")
			}
			return in, nil
		})
	case "crashy": // exits on 7, doubles the rest
		p.Task = sdk.Func(func(ctx context.Context, n int) (int, error) {
			if n == 7 {
				os.Exit(3)
			}
			return 2 * n, nil
		})
	case "v2": // double, claiming another version
		p.Version = "2.0.0"
		p.Task = double
	default:
		p.Task = double
	}
	sdk.Serve(p)
}

// fixture returns the pool.Config of a fixture plugin served as name.
func fixture(t testing.TB, name, mode string, env ...string) pool.Config {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return pool.Config{
		Path: self, Name: name, Workers: 2,
		Env: append([]string{fixtureEnv + "=" + mode, "GORACE=atexit_sleep_ms=0"}, env...),
	}
}

// testLogger writes to the test's log.
func testLogger(t testing.TB) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: "test", Level: hclog.Warn, Output: &tlog{t}})
}

type tlog struct{ t testing.TB }

func (l *tlog) Write(b []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// startServer starts an embedded server on a loopback port.
func startServer(t testing.TB) *cluster.Server {
	t.Helper()
	s, err := cluster.StartServer(context.Background(), cluster.ServerConfig{
		Listen: "127.0.0.1:0", StoreDir: t.TempDir(), Logger: testLogger(t), MaxPayload: 1 << 20,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)
	return s
}

// startWorker starts an in-process worker serving plugins.
func startWorker(t testing.TB, url string, plugins ...pool.Config) *cluster.Worker {
	t.Helper()
	w, err := cluster.StartWorker(context.Background(), cluster.WorkerConfig{
		NATS: cluster.NATS{URL: url}, Plugins: plugins, Logger: testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Terminate() })
	return w
}

// startExecutor starts an executor for plugin on url.
func startExecutor(t testing.TB, cfg cluster.Config) *cluster.Executor {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	e, err := cluster.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Terminate() })
	return e
}

func ints(n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = []byte(strconv.Itoa(i))
	}
	return out
}

func checkDoubled(t testing.TB, rs []pool.Result) {
	t.Helper()
	for i, r := range rs {
		if r.Err != nil {
			t.Fatalf("item %d: %v", i, r.Err)
		}
		if want := strconv.Itoa(2 * i); string(r.Value) != want {
			t.Fatalf("item %d: got %q, want %q", i, r.Value, want)
		}
	}
}

// eventually waits for cond, failing after d.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
