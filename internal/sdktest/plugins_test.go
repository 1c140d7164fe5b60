package sdktest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/pluginpool/pluginpool/internal/testkit"
	"github.com/pluginpool/pluginpool/sdk"
)

// The Go implementation of the suite's plugins, served by this test binary
// when go-plugin's cookie is set (see TestMain). testdata/plugins.py is
// the Python one; each plugin behaves the same in both.

func markerOnce(key string) bool { return testkit.MarkerOnce(os.Getenv("SDKTEST_DIR"), key) }

func count(name string) { testkit.Count(os.Getenv("SDKTEST_DIR"), name) }

func serveGo(name string) {
	p := sdk.Plugin{Name: name, Version: "1.2.3", Idempotent: true}
	switch name {
	case "double": // n -> 2n
		p.Task = sdk.Func(func(_ context.Context, n int) (int, error) { return 2 * n, nil })
	case "errors": // "fail", "panic", "retry", "retryforever", "decode" misbehave; numbers double
		p.Task = sdk.Func(func(ctx context.Context, in any) (any, error) {
			switch in {
			case "fail":
				return nil, errors.New("failed on purpose")
			case "panic":
				panic("boom")
			case "retry":
				if sdk.Attempt(ctx) < 2 {
					return nil, sdk.Retry(errors.New("transient"))
				}
				return "retried", nil
			case "retryforever":
				count("retryforever")
				return nil, sdk.Retry(errors.New("always transient"))
			case "decode":
				return nil, &sdk.DecodeError{Input: []byte(`"decode"`), Type: "x", Err: errors.New("not for me")}
			}
			f, ok := in.(float64)
			if !ok {
				return nil, fmt.Errorf("want a number, got %T", in)
			}
			return 2 * f, nil
		})
	case "crashonce": // exits the first time it sees SDKTEST_CRASH_ON; counts tasks run twice
		p.Idempotent = os.Getenv("SDKTEST_NOTIDEMPOTENT") == ""
		p.Task = sdk.Func(func(_ context.Context, n int) (int, error) {
			if !markerOnce("ran-" + strconv.Itoa(n)) {
				count("twice")
			}
			if strconv.Itoa(n) == os.Getenv("SDKTEST_CRASH_ON") && markerOnce("crashed") {
				os.Exit(9)
			}
			return 2 * n, nil
		})
	case "sleep": // "sleep" returns when cancelled; "hang" ignores cancellation
		p.Task = sdk.Func(func(ctx context.Context, in string) (string, error) {
			switch in {
			case "sleep":
				<-ctx.Done()
				return "", ctx.Err()
			case "hang":
				time.Sleep(time.Hour)
			}
			return in, nil
		})
	case "slow": // sleeps n ms, honouring cancellation; counts "started" and "cancelled"
		p.Task = sdk.Func(func(ctx context.Context, n int) (int, error) {
			count("started")
			select {
			case <-time.After(time.Duration(n) * time.Millisecond):
				return n, nil
			case <-ctx.Done():
				count("cancelled")
				return 0, ctx.Err()
			}
		})
	case "print": // prints "Number: n"; two more lines when n%10 == 0; -1 writes stray output
		p.Task = sdk.Sink(testkit.PrintTask)
	case "log": // logs a warning and an info line with item=n
		p.Task = sdk.Func(func(ctx context.Context, n int) (int, error) {
			sdk.Logger(ctx).Warn("fixture warning", "item", n)
			sdk.Logger(ctx).Info("fixture info", "item", n)
			return n, nil
		})
	case "size": // the length of the raw item
		p.Task = sdk.Raw(func(_ context.Context, in []byte) ([]byte, error) { return []byte(strconv.Itoa(len(in))), nil })
	case "repeat": // n -> a string of n x's
		p.Task = sdk.Func(func(_ context.Context, n int) (string, error) {
			b := make([]byte, n)
			for i := range b {
				b[i] = 'x'
			}
			return string(b), nil
		})
	case "config": // key -> the Init config's value for key
		var cfg map[string]any
		p.Init = func(_ context.Context, raw []byte) error { return json.Unmarshal(raw, &cfg) }
		p.Task = sdk.Func(func(_ context.Context, key string) (any, error) { return cfg[key], nil })
	case "initfail":
		p.Init = func(context.Context, []byte) error { return errors.New("database unreachable") }
		p.Task = sdk.Func(func(_ context.Context, n int) (int, error) { return n, nil })
	case "ids": // -> [task id, attempt]
		p.Task = sdk.Func(func(ctx context.Context, _ any) ([]uint64, error) {
			return []uint64{sdk.TaskID(ctx), uint64(sdk.Attempt(ctx))}, nil
		})
	case "stdin": // what reading stdin gives: "" when it is detached
		p.Task = sdk.Func(func(_ context.Context, _ any) (string, error) {
			buf := make([]byte, 100)
			n, _ := os.Stdin.Read(buf)
			return string(buf[:n]), nil
		})
	default:
		fmt.Fprintln(os.Stderr, "unknown plugin", name)
		os.Exit(2)
	}
	sdk.Serve(p)
}
