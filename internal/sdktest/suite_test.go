package sdktest_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.uber.org/goleak"

	"github.com/pluginpool/pluginpool/host/pool"
	"github.com/pluginpool/pluginpool/internal/python/pythontest"
	"github.com/pluginpool/pluginpool/internal/testkit"
	"github.com/pluginpool/pluginpool/sdk"
)

const pluginEnv = "SDKTEST_PLUGIN"

func TestMain(m *testing.M) {
	if os.Getenv(sdk.Handshake.MagicCookieKey) == sdk.Handshake.MagicCookieValue {
		serveGo(os.Getenv(pluginEnv))
		os.Exit(1) // Serve never returns
	}
	goleak.VerifyTestMain(m)
}

// An implementation of the suite's plugins in one SDK. To check another
// SDK, implement the plugins of plugins_test.go in it and add it here.
type implementation struct {
	name string
	sdk  string // the prefix of DescribeResponse.sdk
	lane bool   // it takes the lane (docs/PROTOCOL.md)
	// plugin returns the executable (or .py file) serving the plugin
	// chosen by SDKTEST_PLUGIN, and extra environment; it skips t when
	// this machine cannot run the implementation.
	plugin func(t *testing.T) (path string, env []string)
}

var implementations = []implementation{
	{name: "go", sdk: "go/", lane: true, plugin: func(t *testing.T) (string, []string) {
		exe, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		return exe, []string{"GORACE=atexit_sleep_ms=0"}
	}},
	// The Go SDK again, its batches on gRPC's Run stream rather than the
	// lane: both transports keep every promise.
	{name: "go-grpc", sdk: "go/", plugin: func(t *testing.T) (string, []string) {
		exe, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		return exe, []string{"GORACE=atexit_sleep_ms=0", "PLUGINPOOL_LANE=off"}
	}},
	{name: "python", sdk: "python/", lane: true, plugin: func(t *testing.T) (string, []string) {
		return pythonPlugins(t), []string{"PYTHONDONTWRITEBYTECODE=1"}
	}},
	// The Python SDK with its batches on gRPC's Run stream.
	{name: "python-grpc", sdk: "python/", plugin: func(t *testing.T) (string, []string) {
		return pythonPlugins(t), []string{"PYTHONDONTWRITEBYTECODE=1", "PLUGINPOOL_LANE=off"}
	}},
}

// pythonPlugins returns testdata/plugins.py, or skips t when no Python
// here can run it.
func pythonPlugins(t *testing.T) string {
	pythontest.Interpreter(t, "testdata")
	path, err := filepath.Abs(filepath.Join("testdata", "plugins.py"))
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// TestBehaviour runs every case against every implementation.
func TestBehaviour(t *testing.T) {
	for _, im := range implementations {
		t.Run(im.name, func(t *testing.T) {
			path, env := im.plugin(t)
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					c.run(&run{T: t, impl: im, path: path, env: env, dir: t.TempDir()})
				})
			}
		})
	}
}

// hangBound is the generous "does not hang" bound of every blocking call.
// No case asserts a shorter wall-clock time.
const hangBound = 60 * time.Second

// run is one case against one implementation.
type run struct {
	*testing.T
	impl implementation
	path string
	env  []string
	dir  string // SDKTEST_DIR
}

// config returns a pool.Config for plugin; the plugins' stray output and
// the pool's log (warnings and up) go to buffers shown if the case fails.
func (r *run) config(plugin string, env ...string) (pool.Config, *testkit.Buffer, *testkit.Buffer) {
	stray, log := &testkit.Buffer{}, &testkit.Buffer{}
	r.Cleanup(func() {
		if r.Failed() {
			r.Logf("plugin output:\n%s\npool log:\n%s", stray, log)
		}
	})
	return pool.Config{
		Path:    r.path,
		Name:    plugin,
		Workers: 2,
		// A Python process on a loaded machine with a cold page cache has
		// taken over 10 s (the default) to import grpc: no case is about
		// start-up time.
		StartTimeout: hangBound,
		Env:          append(append([]string{pluginEnv + "=" + plugin, "SDKTEST_DIR=" + r.dir}, r.env...), env...),
		Stderr:       stray,
		Logger:       hclog.New(&hclog.LoggerOptions{Name: "sdktest", Level: hclog.Warn, Output: log}),
	}, stray, log
}

func (r *run) start(cfg pool.Config) *pool.Pool {
	r.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangBound)
	defer cancel()
	p, err := pool.Start(ctx, cfg)
	if err != nil {
		r.Fatalf("Start: %v", err)
	}
	r.Cleanup(func() { testkit.Bounded(r.T, hangBound, "Terminate", func() { p.Terminate() }) })
	return p
}

// mapAll maps items under the hang bound; it returns every result.
func (r *run) mapAll(p *pool.Pool, items ...string) []pool.Result {
	r.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangBound)
	defer cancel()
	rs, _ := p.Map(ctx, bs(items...))
	if ctx.Err() != nil {
		r.Fatalf("Map did not finish within %s", hangBound)
	}
	return rs
}

// value checks that result i succeeded with want.
func (r *run) value(rs []pool.Result, i int, want string) {
	r.Helper()
	if rs[i].Err != nil || string(rs[i].Value) != want {
		r.Errorf("item %d: got %q, %v; want %s", i, rs[i].Value, rs[i].Err, want)
	}
}

// taskError checks that result i failed with a *TaskError of one of kinds
// whose message contains each of fragments, and returns it.
func (r *run) taskError(rs []pool.Result, i int, kinds []pool.TaskErrorKind, fragments ...string) *pool.TaskError {
	r.Helper()
	var te *pool.TaskError
	if !errors.As(rs[i].Err, &te) || !slices.Contains(kinds, te.Kind) || rs[i].Value != nil {
		r.Errorf("item %d: got %q, %v; want a task error of kind %v", i, rs[i].Value, rs[i].Err, kinds)
		return nil
	}
	for _, f := range fragments {
		if !strings.Contains(te.Message, f) {
			r.Errorf("item %d: message %q lacks %q", i, te.Message, f)
		}
	}
	return te
}

func (r *run) counted(name string) int { return testkit.Counted(r.dir, name) }

// noRestarts checks that no worker was replaced.
func (r *run) noRestarts(p *pool.Pool, what string) {
	r.Helper()
	if st := p.Stats(); st.Restarts != 0 {
		r.Errorf("%s: %d worker restarts; want none", what, st.Restarts)
	}
}

var (
	kindError   = []pool.TaskErrorKind{pool.KindError}
	kindDecode  = []pool.TaskErrorKind{pool.KindDecode}
	kindUnknown = []pool.TaskErrorKind{pool.KindPanic, pool.KindError} // a Go panic; an exception elsewhere
)

// The cases. Each says what every SDK must do.
var cases = []struct {
	name string
	run  func(r *run)
}{
	{"describe", func(r *run) {
		cfg, _, _ := r.config("double")
		p := r.start(cfg)
		info := p.Info()
		if info.Name != "double" || info.Version != "1.2.3" || !info.Idempotent || !strings.HasPrefix(info.SDK, r.impl.sdk) {
			r.Errorf("Info = %+v; want double 1.2.3, idempotent, sdk %s...", info, r.impl.sdk)
		}
		if info.Lane != r.impl.lane {
			r.Errorf("Info.Lane = %v; want %v for the %s implementation", info.Lane, r.impl.lane, r.impl.name)
		}
	}},
	{"ordering", func(r *run) {
		cfg, _, _ := r.config("double")
		p := r.start(cfg)
		items := make([]string, 3000)
		for i := range items {
			items[i] = strconv.Itoa(i - 100)
		}
		rs := r.mapAll(p, items...)
		bad := 0
		for i, res := range rs {
			if res.Err != nil || string(res.Value) != strconv.Itoa(2*(i-100)) {
				if bad++; bad < 5 {
					r.Errorf("item %d: %q, %v", i, res.Value, res.Err)
				}
			}
		}
	}},
	{"decode errors", func(r *run) {
		cfg, _, _ := r.config("double")
		p := r.start(cfg)
		rs := r.mapAll(p, "1", `"x"`, "2.5", "[1", "3")
		r.value(rs, 0, "2")
		r.taskError(rs, 1, kindDecode, `"x"`)
		r.taskError(rs, 2, kindDecode, "2.5")
		r.taskError(rs, 3, kindDecode, "[1")
		r.value(rs, 4, "6")
		cfg, _, _ = r.config("errors")
		p = r.start(cfg)
		r.taskError(r.mapAll(p, `"decode"`), 0, kindDecode, "not for me")
	}},
	{"task errors", func(r *run) {
		cfg, _, _ := r.config("errors")
		p := r.start(cfg)
		pids := testkit.Pids(p)
		rs := r.mapAll(p, "1", `"fail"`, "2", `"panic"`, "3")
		r.value(rs, 0, "2")
		r.taskError(rs, 1, kindError, "failed on purpose")
		r.value(rs, 2, "4")
		// A panic or an exception carries its stack or traceback.
		if te := r.taskError(rs, 3, kindUnknown, "boom"); te != nil && strings.Count(te.Message, "\n") < 2 {
			r.Errorf("panic: message %q has no stack", te.Message)
		}
		r.value(rs, 4, "6")
		r.noRestarts(p, "after task errors")
		if !slices.Equal(testkit.Pids(p), pids) {
			r.Errorf("a task error replaced a worker: %v -> %v", pids, testkit.Pids(p))
		}
	}},
	{"retry", func(r *run) {
		cfg, _, _ := r.config("errors")
		cfg.MaxAttempts = 3
		p := r.start(cfg)
		rs := r.mapAll(p, `"retry"`, `"retryforever"`)
		r.value(rs, 0, `"retried"`)
		if te := r.taskError(rs, 1, kindError, "always transient"); te != nil && te.Attempt != 3 {
			r.Errorf("retryforever: failed on attempt %d; want 3", te.Attempt)
		}
		if n := r.counted("retryforever"); n != 3 {
			r.Errorf("retryforever ran %d times; want max_attempts = 3", n)
		}
	}},
	{"ids and attempts", func(r *run) {
		cfg, _, _ := r.config("ids")
		p := r.start(cfg)
		rs := r.mapAll(p, "0", "0", "0", "0", "0", "0")
		seen := map[string]bool{}
		for i, res := range rs {
			m := regexp.MustCompile(`^\[(\d+),1\]$`).FindSubmatch(res.Value)
			if res.Err != nil || m == nil || seen[string(m[1])] || string(m[1]) == "0" {
				r.Errorf("item %d: %q, %v; want [unique id, attempt 1]", i, res.Value, res.Err)
				continue
			}
			seen[string(m[1])] = true
		}
	}},
	{"crash retried", func(r *run) {
		cfg, _, _ := r.config("crashonce", "SDKTEST_CRASH_ON=7")
		cfg.Workers = 1
		p := r.start(cfg)
		items := make([]string, 20)
		for i := range items {
			items[i] = strconv.Itoa(i)
		}
		rs := r.mapAll(p, items...)
		for i := range rs {
			r.value(rs, i, strconv.Itoa(2*i))
		}
		if st := p.Stats(); st.Restarts != 1 {
			r.Errorf("%d restarts; want 1", st.Restarts)
		}
	}},
	{"start ledger", func(r *run) {
		// A plugin that is not idempotent dies under item 7 of a batch of
		// 20. With the start ledger the host knows which task was running:
		// the tasks after it never started and run again at no cost; the
		// one it died under fails. No task runs twice.
		cfg, _, _ := r.config("crashonce", "SDKTEST_CRASH_ON=7", "SDKTEST_NOTIDEMPOTENT=1")
		cfg.Workers = 1
		cfg.ChunkSize = 20
		p := r.start(cfg)
		if !p.Info().StartLedger {
			r.Fatalf("Info = %+v; want the start ledger kept", p.Info())
		}
		items := make([]string, 20)
		for i := range items {
			items[i] = strconv.Itoa(i)
		}
		rs := r.mapAll(p, items...)
		if !errors.Is(rs[7].Err, pool.ErrCrashed) {
			r.Errorf("item 7: %q, %v; want the crash", rs[7].Value, rs[7].Err)
		}
		for i := 8; i < len(rs); i++ {
			r.value(rs, i, strconv.Itoa(2*i)) // never started: run again
		}
		for i := range 7 { // finished: kept, or failed if the answer died with it
			if rs[i].Err == nil {
				r.value(rs, i, strconv.Itoa(2*i))
			} else if !errors.Is(rs[i].Err, pool.ErrCrashed) {
				r.Errorf("item %d: %v; want its result or the crash", i, rs[i].Err)
			}
		}
		if n := r.counted("twice"); n != 0 {
			r.Errorf("%d tasks ran twice; a plugin that is not idempotent runs none twice", n)
		}
	}},
	{"tls", func(r *run) {
		// go-plugin's AutoMTLS: the SDK serves TLS with a certificate of
		// its own and requires the host's.
		cfg, _, _ := r.config("double")
		cfg.TLS = true
		p := r.start(cfg)
		r.value(r.mapAll(p, "21"), 0, "42")
	}},
	{"max result bytes", func(r *run) {
		// A result over max_result_bytes fails its item in the SDK; the
		// worker lives on and the others come back.
		cfg, _, _ := r.config("repeat")
		cfg.MaxResultBytes = 1000
		p := r.start(cfg)
		rs := r.mapAll(p, "10", "5000", "20")
		r.value(rs, 0, `"xxxxxxxxxx"`)
		r.taskError(rs, 1, kindError, "over the 1000-byte limit (max_result_bytes)")
		r.value(rs, 2, `"`+strings.Repeat("x", 20)+`"`)
		r.noRestarts(p, "a result too large")
	}},
	{"timeout honoured", func(r *run) {
		cfg, _, _ := r.config("sleep")
		cfg.TaskTimeout = 300 * time.Millisecond
		cfg.KillGrace = 5 * time.Second // a task that honours its timeout is never killed
		p := r.start(cfg)
		rs := r.mapAll(p, `"a"`, `"sleep"`, `"b"`)
		r.value(rs, 0, `"a"`)
		var te *pool.TimeoutError
		if !errors.As(rs[1].Err, &te) || te.Killed {
			r.Errorf("sleep: %v; want a *TimeoutError, not killed", rs[1].Err)
		}
		r.value(rs, 2, `"b"`)
		r.noRestarts(p, "a timeout honoured")
	}},
	{"timeout ignored", func(r *run) {
		cfg, _, _ := r.config("sleep")
		cfg.Workers = 1
		cfg.TaskTimeout = 200 * time.Millisecond
		cfg.KillGrace = 300 * time.Millisecond
		p := r.start(cfg)
		rs := r.mapAll(p, `"hang"`)
		var te *pool.TimeoutError
		if !errors.As(rs[0].Err, &te) || !te.Killed {
			r.Errorf("hang: %v; want a *TimeoutError, killed", rs[0].Err)
		}
		r.value(r.mapAll(p, `"after"`), 0, `"after"`)
	}},
	{"flush keeps a long batch alive", func(r *run) {
		// Batches of 50 tasks of 50 ms (Map spreads 200 items over 4
		// batches a worker): 2.5 s each, past task_timeout + kill_grace
		// (2 s). The host's watchdog kills a worker that reports no
		// progress for that long: only answers every flush interval keep
		// it alive. (A task is 30 times shorter than the timeout, for
		// loaded machines.)
		cfg, _, _ := r.config("slow")
		cfg.Workers = 1
		cfg.ChunkSize = 200
		cfg.TaskTimeout = 1500 * time.Millisecond
		cfg.KillGrace = 500 * time.Millisecond
		p := r.start(cfg)
		items := make([]string, 200)
		for i := range items {
			items[i] = "50"
		}
		rs := r.mapAll(p, items...)
		for i := range rs {
			r.value(rs, i, "50")
		}
		r.noRestarts(p, "long batches of quick tasks")
	}},
	{"cancellation", func(r *run) {
		// Batches of 5 tasks of 5 s, two in flight: cancelling the call
		// must cancel the running task's context, and answer the other
		// items as cancelled without starting them.
		cfg, _, _ := r.config("slow")
		cfg.Workers = 1
		cfg.ChunkSize = 20
		cfg.InFlight = 2
		p := r.start(cfg)
		items := make([]string, 20)
		for i := range items {
			items[i] = "5000"
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			// Cancel once the first task runs (a cancel that comes first
			// rightly starts nothing, and proves less).
			for deadline := time.Now().Add(hangBound); r.counted("started") < 1 && time.Now().Before(deadline); {
				time.Sleep(5 * time.Millisecond)
			}
			cancel()
		}()
		var rs []pool.Result
		var err error
		testkit.Bounded(r.T, hangBound, "a cancelled Map", func() { rs, err = p.Map(ctx, bs(items...)) })
		if !errors.Is(err, context.Canceled) {
			r.Errorf("Map: %v; want context.Canceled", err)
		}
		for i, res := range rs {
			if !errors.Is(res.Err, context.Canceled) {
				r.Errorf("item %d: %q, %v; want context.Canceled", i, res.Value, res.Err)
			}
		}
		// The host cancels each batch in flight with a message of its own:
		// the plugin may start the next batch's first task before that
		// batch's cancel arrives. The next call's batch follows them on the
		// same stream and runs after them, so once it is answered every
		// task of the cancelled call has started and seen its cancellation,
		// or never will: no other task may start.
		r.value(r.mapAll(p, "1"), 0, "1")
		started := r.counted("started") - 1 // less the next call's
		if started < 1 || started > cfg.InFlight {
			r.Errorf("%d tasks of the cancelled call started; want 1 to %d (in_flight), the first of each batch at most", started, cfg.InFlight)
		}
		if c := r.counted("cancelled"); c != started {
			r.Errorf("%d tasks saw their cancellation; want all %d that started", c, started)
		}
		r.noRestarts(p, "a cancelled call")
	}},
	{"output lines", func(r *run) {
		cfg, stray, _ := r.config("print")
		p := r.start(cfg)
		items := make([]string, 0, 41)
		for i := 1; i <= 40; i++ {
			items = append(items, strconv.Itoa(i))
		}
		items = append(items, "-1")
		rs := r.mapAll(p, items...)
		for i, res := range rs {
			n, _ := strconv.Atoi(items[i])
			want := []string{"Number: " + items[i]}
			if n%10 == 0 {
				want = append(want, "line one", "line two")
			}
			if res.Err != nil || res.Value != nil || !slices.Equal(res.Output, want) {
				r.Errorf("item %d: value %q, output %q, %v; want output %q and no value", i, res.Value, res.Output, res.Err, want)
			}
		}
		// Stray output is forwarded asynchronously, line by line, tagged.
		for _, stream := range []string{"stdout", "stderr"} {
			re := regexp.MustCompile(`(?m)^\[print\[\d\] pid \d+ ` + stream + `\] stray ` + stream + `$`)
			testkit.Eventually(r.T, hangBound, "stray "+stream, func() bool { return re.MatchString(stray.String()) })
		}
		if strings.Contains(stray.String(), "Number:") {
			r.Errorf("task output leaked to the stray output: %q", stray)
		}
	}},
	{"logs", func(r *run) {
		cfg, _, log := r.config("log")
		p := r.start(cfg)
		rs := r.mapAll(p, "1", "2", "3")
		for i := range rs {
			r.value(rs, i, strconv.Itoa(i+1))
		}
		// A warning reaches the host's log at warn level, with its
		// key/value pairs and the worker's tags; info stays below the
		// host's level.
		re := regexp.MustCompile(`\[WARN\] +sdktest\.log: fixture warning: .*\bitem=3\b`)
		testkit.Eventually(r.T, hangBound, "the plugin's warning in the host log", func() bool { return re.MatchString(log.String()) })
		for _, want := range []string{"slot=", "pid="} {
			if !strings.Contains(log.String(), want) {
				r.Errorf("host log lacks %q:\n%s", want, log)
			}
		}
		if strings.Contains(log.String(), "fixture info") {
			r.Errorf("an info line passed the host's warn level:\n%s", log)
		}
		// The host passes its level: at info, info lines come too.
		cfg, _, log = r.config("log")
		cfg.Logger = hclog.New(&hclog.LoggerOptions{Name: "sdktest", Level: hclog.Info, Output: log})
		p = r.start(cfg)
		r.mapAll(p, "4")
		info := regexp.MustCompile(`\[INFO\] +sdktest\.log: fixture info: .*\bitem=4\b`)
		testkit.Eventually(r.T, hangBound, "the plugin's info line at level info", func() bool { return info.MatchString(log.String()) })
	}},
	{"large items", func(r *run) {
		// Over gRPC's 4 MiB default message limit, both ways.
		cfg, _, _ := r.config("size")
		cfg.Workers = 1
		p := r.start(cfg)
		big := `"` + strings.Repeat("y", 5_000_000) + `"`
		rs := r.mapAll(p, "1", big, `"z"`)
		r.value(rs, 0, "1")
		r.value(rs, 1, "5000002")
		r.value(rs, 2, "3")
		cfg, _, _ = r.config("repeat")
		cfg.Workers = 1
		p = r.start(cfg)
		rs = r.mapAll(p, "5000000", "2")
		if rs[0].Err != nil || len(rs[0].Value) != 5_000_002 {
			r.Errorf("a 5 MB result: %d bytes, %v", len(rs[0].Value), rs[0].Err)
		}
		r.value(rs, 1, `"xx"`)
	}},
	{"init config", func(r *run) {
		cfg, _, _ := r.config("config")
		cfg.PluginConfig = []byte(`{"greeting": "hi", "n": 3, "list": [1, "two"]}`)
		p := r.start(cfg)
		rs := r.mapAll(p, `"greeting"`, `"n"`, `"list"`, `"missing"`)
		r.value(rs, 0, `"hi"`)
		r.value(rs, 1, "3")
		r.value(rs, 2, `[1,"two"]`)
		r.value(rs, 3, "null")
	}},
	{"init failure", func(r *run) {
		cfg, _, _ := r.config("initfail")
		ctx, cancel := context.WithTimeout(context.Background(), hangBound)
		defer cancel()
		p, err := pool.Start(ctx, cfg)
		if err == nil {
			p.Terminate()
		}
		if !errors.Is(err, pool.ErrInit) || !strings.Contains(err.Error(), "database unreachable") {
			r.Errorf("Start: %v; want ErrInit with the plugin's message", err)
		}
	}},
	{"stdin detached", func(r *run) {
		// go-plugin hands a plugin the host's stdin; the SDK detaches it so
		// a task can never steal the CLI's input.
		rd, wr, err := os.Pipe()
		if err != nil {
			r.Fatal(err)
		}
		wr.WriteString("stolen\n")
		saved := os.Stdin
		os.Stdin = rd
		defer func() { os.Stdin = saved; rd.Close(); wr.Close() }()
		cfg, _, _ := r.config("stdin")
		cfg.Workers = 1
		p := r.start(cfg)
		os.Stdin = saved
		r.value(r.mapAll(p, "0"), 0, `""`)
	}},
	{"shutdown", func(r *run) {
		// Close asks each plugin to exit (go-plugin's GRPCController
		// Shutdown); one that does not is killed after 2 s, and go-plugin
		// says so at debug level.
		cfg, _, log := r.config("double")
		cfg.Logger = hclog.New(&hclog.LoggerOptions{Name: "sdktest", Level: hclog.Debug, Output: log})
		p := r.start(cfg)
		r.value(r.mapAll(p, "1"), 0, "2")
		testkit.Bounded(r.T, hangBound, "Close", func() {
			if err := p.Close(); err != nil {
				r.Errorf("Close: %v", err)
			}
		})
		if strings.Contains(log.String(), "plugin failed to exit gracefully") {
			r.Errorf("a plugin did not exit when asked; it was killed:\n%s", log)
		}
	}},
}

func bs(items ...string) [][]byte {
	out := make([][]byte, len(items))
	for i, s := range items {
		out[i] = []byte(s)
	}
	return out
}
