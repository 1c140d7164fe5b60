package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/pluginpool/pluginpool/host/cluster"
	"github.com/pluginpool/pluginpool/host/pool"
	"github.com/pluginpool/pluginpool/internal/testkit"
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
	testkit.ServeFixture(fixtureEnv, serveFixture)
	dir, err := testkit.Build(testkit.Double, testkit.Printer, testkit.CLI)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := testkit.Run(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

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
	case "fragile": // not idempotent; exits on 7, doubles the rest
		p.Idempotent = false
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

// fixture returns the pool.Config of a fixture plugin served as name, with
// two workers.
func fixture(t testing.TB, name, mode string, env ...string) pool.Config {
	t.Helper()
	cfg := testkit.Fixture(t, name, fixtureEnv, mode, env...)
	cfg.Workers = 2
	return cfg
}

// testLogger writes to a buffer logged if the test fails.
func testLogger(t testing.TB) hclog.Logger { return testkit.Logger(testkit.LogOnFailure(t, "cluster")) }

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
