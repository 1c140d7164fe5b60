package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pluginpool/pluginpool/host/backend"
	"github.com/pluginpool/pluginpool/host/pool"
	"github.com/pluginpool/pluginpool/internal/testkit"
	"github.com/pluginpool/pluginpool/sdk"
)

// The tests run real plugins: plugins/double and plugins/printer, built
// once into binDir by TestMain, and the "step" fixture, served by this
// test binary re-executed as a plugin (testkit.ServeFixture). Fixture
// plugins live here, never under plugins/.
var binDir string

func TestMain(m *testing.M) {
	testkit.ServeFixture(fixtureEnv, func(string) { serveStep() })
	dir, err := testkit.Build(testkit.Double, testkit.Printer)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	binDir = dir
	// Every Run stops its pools; after the last test no goroutine of the
	// pipeline, the pools, go-plugin or gRPC may be left.
	code := testkit.Run(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

// fixtureEnv names the fixture a re-executed test binary serves: "step",
// the only one.
const fixtureEnv = "PIPELINETEST_FIXTURE"

// serveStep is a configurable stage over integers. Each item n:
// STEP_SLEEP_MS: sleeps that long (honouring cancellation);
// STEP_TAG: prints "TAG N";
// STEP_FAIL (comma-separated): fails with "no N";
// STEP_DROP (comma-separated): returns no value;
// STEP_CRASH_FROM: exits, after 50 ms, on every n at least that;
// then returns n + STEP_ADD.
func serveStep() {
	set := func(key string) map[int]bool {
		m := map[int]bool{}
		for _, f := range strings.Split(os.Getenv(key), ",") {
			if n, err := strconv.Atoi(f); err == nil {
				m[n] = true
			}
		}
		return m
	}
	fail, drop, tag := set("STEP_FAIL"), set("STEP_DROP"), os.Getenv("STEP_TAG")
	add, _ := strconv.Atoi(os.Getenv("STEP_ADD"))
	sleep, _ := strconv.Atoi(os.Getenv("STEP_SLEEP_MS"))
	crashFrom, crashes := strconv.Atoi(os.Getenv("STEP_CRASH_FROM"))
	sdk.Serve(sdk.Plugin{Name: "step", Version: "0.0.1", Idempotent: true,
		Task: sdk.Raw(func(ctx context.Context, in []byte) ([]byte, error) {
			n, err := strconv.Atoi(string(in))
			if err != nil {
				return nil, fmt.Errorf("want an integer, got %s", in)
			}
			if sleep > 0 {
				select {
				case <-time.After(time.Duration(sleep) * time.Millisecond):
				case <-ctx.Done():
					return nil, ctx.Err()
				}
			}
			if tag != "" {
				sdk.Printf(ctx, "%s %d", tag, n)
			}
			if crashes == nil && n >= crashFrom {
				// The pause lets the answers sent before leave the process.
				time.Sleep(50 * time.Millisecond)
				os.Exit(4)
			}
			switch {
			case fail[n]:
				return nil, fmt.Errorf("no %d", n)
			case drop[n]:
				return nil, nil
			}
			return strconv.AppendInt(nil, int64(n+add), 10), nil
		})})
}

// stage returns the pool.Config of a stage: "double" and "printer" run the
// real plugins (printer with format "Number: %v"), "step" the fixture,
// configured by env ("STEP_FAIL=3", ...). Plugin output and logs go to a
// buffer printed if the test fails.
func stage(t testing.TB, name string, workers int, env ...string) pool.Config {
	t.Helper()
	var cfg pool.Config
	switch name {
	case "double", "printer":
		out := testkit.LogOnFailure(t, name)
		cfg = pool.Config{Name: name, Path: filepath.Join(binDir, name), Stderr: out, Logger: testkit.Logger(out)}
		if name == "printer" {
			cfg.PluginConfig = []byte(`{"format": "Number: %v"}`)
		}
	default:
		cfg = testkit.Fixture(t, name, fixtureEnv, "step", env...)
	}
	cfg.Workers = workers
	return cfg
}

// stages starts each of cfgs on local processes.
func stages(cfgs ...pool.Config) []backend.StartFunc {
	s := make([]backend.StartFunc, len(cfgs))
	for i, cfg := range cfgs {
		s[i] = pool.Starter(cfg)
	}
	return s
}

// hangBound is the generous "does not hang" bound of every run in these
// tests. No test asserts a shorter wall-clock time.
const hangBound = 60 * time.Second

var errFull = errors.New("disk full")
