package pool_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pluginpool/pluginpool/host/pool"
	"github.com/pluginpool/pluginpool/sdk"
)

// The tests start real plugin processes by re-executing this test binary:
// TestMain serves fixture plugins when go-plugin's cookie is set, picked by
// POOLTEST_FIXTURE. Fixture plugins live here, never under plugins/.
const fixtureEnv = "POOLTEST_FIXTURE"

func TestMain(m *testing.M) {
	if os.Getenv(sdk.Handshake.MagicCookieKey) == sdk.Handshake.MagicCookieValue {
		serveFixture(os.Getenv(fixtureEnv))
		os.Exit(0)
	}
	if os.Getenv("POOLTEST_HOST") != "" {
		os.Exit(runHost())
	}
	os.Exit(m.Run())
}

func double(_ context.Context, n int) (int, error) { return 2 * n, nil }

// markerOnce reports whether this is the first time the fixture saw key:
// it creates a file named after key in POOLTEST_DIR.
func markerOnce(key string) bool {
	f, err := os.OpenFile(os.Getenv("POOLTEST_DIR")+"/"+key, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return false
	}
	f.Close()
	return true
}

func serveFixture(name string) {
	p := sdk.Plugin{Name: name, Version: "1.2.3", Idempotent: true, Task: sdk.Func(double)}
	crashOn := os.Getenv("POOLTEST_CRASH_ON")
	switch name {
	case "double":
	case "notidempotent":
		p.Idempotent = false
		p.Task = sdk.Func(func(ctx context.Context, n int) (int, error) {
			if strconv.Itoa(n) == crashOn {
				os.Exit(7)
			}
			return 2 * n, nil
		})
	case "crash": // crashes on POOLTEST_CRASH_ON, every time
		p.Task = sdk.Func(func(ctx context.Context, n int) (int, error) {
			if strconv.Itoa(n) == crashOn {
				fmt.Fprintln(os.Stderr, "about to crash on", n)
				go func() { panic(fmt.Sprintf("poison item %d", n)) }()
				time.Sleep(time.Second)
			}
			return 2 * n, nil
		})
	case "crashonce": // crashes the first time it sees POOLTEST_CRASH_ON
		p.Task = sdk.Func(func(ctx context.Context, n int) (int, error) {
			if strconv.Itoa(n) == crashOn && markerOnce("crashed") {
				os.Exit(9)
			}
			return 2 * n, nil
		})
	case "errors": // "panic", "fail", "retry" inputs misbehave; numbers double
		p.Task = sdk.Func(func(ctx context.Context, in any) (any, error) {
			switch in {
			case "panic":
				panic("boom")
			case "fail":
				return nil, errors.New("failed on purpose")
			case "retry":
				if sdk.Attempt(ctx) < 2 {
					return nil, sdk.Retry(errors.New("transient"))
				}
				return "retried", nil
			case "retryforever":
				return nil, sdk.Retry(errors.New("always transient"))
			}
			f, ok := in.(float64)
			if !ok {
				return nil, fmt.Errorf("want a number, got %T", in)
			}
			return 2 * f, nil
		})
	case "hang": // "hang" ignores cancellation; "sleep" honours it
		p.Task = sdk.Func(func(ctx context.Context, in string) (string, error) {
			switch in {
			case "hang":
				time.Sleep(time.Hour)
			case "sleep":
				<-ctx.Done()
				return "", ctx.Err()
			}
			return in, nil
		})
	case "print":
		p.Idempotent = false
		p.Task = sdk.Sink(func(ctx context.Context, n int) error {
			sdk.Printf(ctx, "Number: %d", n)
			if n%10 == 0 {
				sdk.Printf(ctx, "line one\nline two")
			}
			if n == -1 {
				fmt.Println("stray stdout")
				fmt.Fprintln(os.Stderr, "stray stderr")
			}
			return nil
		})
	case "ids":
		p.Task = sdk.Func(func(ctx context.Context, n int) (string, error) {
			return fmt.Sprintf("%d:%d", sdk.TaskID(ctx), sdk.Attempt(ctx)), nil
		})
	case "config":
		var cfg map[string]any
		p.Init = func(ctx context.Context, raw []byte) error {
			return jsonUnmarshal(raw, &cfg)
		}
		p.Task = sdk.Func(func(ctx context.Context, key string) (any, error) { return cfg[key], nil })
	case "initfail":
		p.Init = func(context.Context, []byte) error { return errors.New("database unreachable") }
	case "initfaillater": // the first process starts, every later one fails Init
		p.Init = func(context.Context, []byte) error {
			f, err := os.OpenFile(os.Getenv("POOLTEST_DIR")+"/starts", os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
			if err == nil {
				f.WriteString("x")
				f.Close()
			}
			if markerOnce("first") {
				return nil
			}
			return errors.New("cannot initialise again")
		}
	case "exitstart":
		fmt.Fprintln(os.Stderr, "missing license file")
		os.Exit(3)
	case "stdout":
		fmt.Println("hello from a plugin that prints too early")
	case "slowstart":
		time.Sleep(time.Hour)
	case "echo":
		p.Task = sdk.Raw(func(ctx context.Context, in []byte) ([]byte, error) { return append([]byte(nil), in...), nil })
	case "size":
		p.Task = sdk.Raw(func(ctx context.Context, in []byte) ([]byte, error) { return []byte(strconv.Itoa(len(in))), nil })
	case "leak":
		var keep [][]byte
		p.Task = sdk.Func(func(ctx context.Context, n int) (int, error) {
			for {
				keep = append(keep, make([]byte, 1<<20))
				for i := range keep[len(keep)-1] {
					keep[len(keep)-1][i] = 1
				}
			}
		})
	default:
		fmt.Fprintln(os.Stderr, "unknown fixture", name)
		os.Exit(2)
	}
	sdk.Serve(p)
}

// fixture returns a Config that runs the named fixture plugin.
func fixture(t testing.TB, name string, env ...string) pool.Config {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return pool.Config{
		Path: exe,
		Name: name,
		Env: append([]string{
			fixtureEnv + "=" + name,
			"GORACE=atexit_sleep_ms=0",
			"POOLTEST_DIR=" + t.TempDir(),
		}, env...),
		Stderr: testWriter{t},
	}
}

// start starts a pool and closes it when the test ends.
func start(t testing.TB, cfg pool.Config) *pool.Pool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := pool.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { p.Terminate() })
	return p
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(b), "\n"))
	return len(b), nil
}

func ints(n int) [][]byte {
	items := make([][]byte, n)
	for i := range items {
		items[i] = []byte(strconv.Itoa(i))
	}
	return items
}
