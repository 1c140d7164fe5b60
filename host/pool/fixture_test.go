package pool_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/pluginpool/pluginpool/host/pool"
	"github.com/pluginpool/pluginpool/internal/testkit"
	"github.com/pluginpool/pluginpool/sdk"
	workerpb "github.com/pluginpool/pluginpool/sdk/proto"
)

// The tests start real plugin processes by re-executing this test binary:
// TestMain serves fixture plugins when go-plugin's cookie is set, picked by
// POOLTEST_FIXTURE. Fixture plugins live here, never under plugins/.
// POOLTEST_HOST runs the binary as a host instead (see orphan_test.go).
const fixtureEnv = "POOLTEST_FIXTURE"

func TestMain(m *testing.M) {
	testkit.ServeFixture(fixtureEnv, serveFixture)
	if os.Getenv("POOLTEST_HOST") != "" {
		os.Exit(runHost())
	}
	if path := os.Getenv(connectEnv); path != "" {
		os.Exit(runConnect(path))
	}
	// Every test closes or terminates its pools; after the last one no
	// goroutine of the pool, go-plugin or gRPC may be left.
	os.Exit(testkit.Run(m))
}

func double(_ context.Context, n int) (int, error) { return 2 * n, nil }

// markerOnce reports whether this is the first time the fixture saw key
// (a file named after it in POOLTEST_DIR).
func markerOnce(key string) bool { return testkit.MarkerOnce(os.Getenv("POOLTEST_DIR"), key) }

// count counts an event across processes, in POOLTEST_DIR/name.
func count(name string) {
	if dir := os.Getenv("POOLTEST_DIR"); dir != "" { // the examples count nothing
		testkit.Count(dir, name)
	}
}

// ran counts a run of the task for item key, in POOLTEST_DIR/run-KEY.
func ran(key any) { count(fmt.Sprint("run-", key)) }

// runs reads how many times the task for item key ran (see ran).
func runs(t testing.TB, cfg pool.Config, key any) int {
	t.Helper()
	return counted(t, cfg, fmt.Sprint("run-", key))
}

func serveFixture(name string) {
	count("launches") // every process start, whether or not it gets to Init
	p := sdk.Plugin{Name: name, Version: "1.2.3", Idempotent: true, Task: sdk.Func(double)}
	crashOn := os.Getenv("POOLTEST_CRASH_ON")
	switch name {
	case "double":
	case "notidempotent": // exits on POOLTEST_CRASH_ON, every time; counts tasks run twice
		p.Idempotent = false
		p.Task = sdk.Func(func(ctx context.Context, n int) (int, error) {
			ran(n)
			if !markerOnce("ran-" + strconv.Itoa(n)) {
				count("twice")
			}
			if strconv.Itoa(n) == crashOn {
				os.Exit(7)
			}
			return 2 * n, nil
		})
	case "crash": // crashes on POOLTEST_CRASH_ON, every time
		p.Task = sdk.Func(func(ctx context.Context, n int) (int, error) {
			ran(n)
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
				count("retryforever")
				return nil, sdk.Retry(errors.New("always transient"))
			}
			f, ok := in.(float64)
			if !ok {
				return nil, fmt.Errorf("want a number, got %T", in)
			}
			return 2 * f, nil
		})
	case "hang": // "hang" ignores cancellation; "sleep" honours it
		if os.Getenv("POOLTEST_NOTIDEMPOTENT") != "" {
			p.Idempotent = false
		}
		p.Task = sdk.Func(func(ctx context.Context, in string) (string, error) {
			ran(in)
			if !p.Idempotent && !markerOnce("ran-"+in) {
				count("twice")
			}
			switch in {
			case "hang":
				time.Sleep(time.Hour)
			case "sleep":
				<-ctx.Done()
				return "", ctx.Err()
			}
			return in, nil
		})
	case "slow": // sleeps n ms (honouring cancellation), returns n
		p.Task = sdk.Func(func(ctx context.Context, n int) (int, error) {
			select {
			case <-time.After(time.Duration(n) * time.Millisecond):
				return n, nil
			case <-ctx.Done():
				return 0, ctx.Err()
			}
		})
	case "exitwhy": // says why on stderr, then exits, on POOLTEST_CRASH_ON
		p.Task = sdk.Func(func(ctx context.Context, n int) (int, error) {
			if strconv.Itoa(n) == crashOn {
				fmt.Fprintln(os.Stderr, "why: item", n, "is poison")
				os.Exit(2)
			}
			return 2 * n, nil
		})
	case "crashall": // exits on every task: a crash loop
		p.Task = sdk.Func(func(ctx context.Context, n int) (int, error) {
			ran(n)
			os.Exit(5)
			return 0, nil
		})
	case "noledger": // the double fixture as a third-party SDK without the start ledger would serve it
		os.Setenv("PLUGINPOOL_LEDGER_FD", "")
		p.Task = sdk.Func(func(ctx context.Context, n int) (int, error) {
			ran(n)
			if strconv.Itoa(n) == crashOn && markerOnce("crashed") {
				os.Exit(9)
			}
			return 2 * n, nil
		})
	case "print":
		p.Idempotent = false
		p.Task = sdk.Sink(testkit.PrintTask)
	case "pid": // "2n:pid", to see which process ran what
		p.Task = sdk.Func(func(ctx context.Context, n int) (string, error) {
			return fmt.Sprintf("%d:%d", 2*n, os.Getpid()), nil
		})
	case "attempt": // "2n:attempt"
		p.Task = sdk.Func(func(ctx context.Context, n int) (string, error) {
			return fmt.Sprintf("%d:%d", 2*n, sdk.Attempt(ctx)), nil
		})
	case "ids":
		p.Task = sdk.Func(func(ctx context.Context, n int) (string, error) {
			return fmt.Sprintf("%d:%d", sdk.TaskID(ctx), sdk.Attempt(ctx)), nil
		})
	case "config":
		var cfg map[string]any
		p.Init = func(ctx context.Context, raw []byte) error {
			return json.Unmarshal(raw, &cfg)
		}
		p.Task = sdk.Func(func(ctx context.Context, key string) (any, error) { return cfg[key], nil })
	case "initfail":
		p.Init = func(context.Context, []byte) error { return errors.New("database unreachable") }
	case "initfaillater": // the first process starts, every later one fails Init
		p.Init = func(context.Context, []byte) error {
			count("starts")
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
	case "tcp": // announces a TCP address, as go-plugin's Python example does
		fmt.Println("1|1|tcp|127.0.0.1:1|grpc")
		time.Sleep(time.Hour)
	case "badbytes": // fails or prints badBytes for "fail" and "print"; echoes the rest
		p.Task = sdk.Raw(testkit.BadBytesTask)
	case "badlog": // writes log records go-plugin cannot take as they are, then echoes
		p.Task = sdk.Raw(func(ctx context.Context, in []byte) ([]byte, error) {
			fmt.Fprintln(os.Stderr, `{"@message": 5, "@level": "warn"}`)
			fmt.Fprintln(os.Stderr, `{"@message": "x", "@timestamp": null}`)
			return append([]byte(nil), in...), nil
		})
	case "echo":
		p.Task = sdk.Raw(func(ctx context.Context, in []byte) ([]byte, error) { return append([]byte(nil), in...), nil })
	case "size":
		p.Task = sdk.Raw(func(ctx context.Context, in []byte) ([]byte, error) { return []byte(strconv.Itoa(len(in))), nil })
	case "leak":
		var keep [][]byte
		p.Task = sdk.Func(func(ctx context.Context, n int) (int, error) {
			for {
				b := make([]byte, 1<<20)
				for i := 0; i < len(b); i += 4096 { // touch every page
					b[i] = 1
				}
				keep = append(keep, b)
			}
		})
	case "stdin": // reads its stdin before Serve, as a careless plugin would; reports what it got
		n, _ := io.Copy(io.Discard, os.Stdin)
		fd0, _ := os.Readlink("/proc/self/fd/0")
		p.Task = sdk.Func(func(ctx context.Context, _ int) (string, error) { return fmt.Sprintf("%d %s", n, fd0), nil })
	case "env": // the value of the variable an item names
		p.Task = sdk.Func(func(ctx context.Context, key string) (string, error) {
			v, ok := os.LookupEnv(key)
			if !ok {
				return "<unset>", nil
			}
			return v, nil
		})
	case "childfds": // what each descriptor of a child process it starts is
		p.Task = sdk.Func(func(ctx context.Context, _ int) (string, error) {
			out, err := exec.CommandContext(ctx, "/bin/sh", "-c", `for f in /proc/$$/fd/*; do echo "$f $(readlink $f)"; done`).Output()
			return string(out), err
		})
	case "exe": // where this process runs from, and its argv[0]
		p.Task = sdk.Func(func(ctx context.Context, _ int) (string, error) {
			exe, err := os.Readlink("/proc/self/exe")
			return exe + " " + os.Args[0], err
		})
	case "spawn": // starts children (see spawnChildren); "spawnhang" then hangs, "spawnexit" exits
		p.Task = sdk.Func(func(ctx context.Context, in string) (string, error) {
			if in == "spawnheld" { // a child in a session of its own holds our stderr; we exit
				c := exec.Command("sleep", "3600")
				c.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
				c.Stderr = os.NewFile(2, "stderr") // the host's pipe: Serve swapped os.Stderr, not fd 2
				if err := c.Start(); err != nil {
					return "", err
				}
				record("held", c.Process.Pid)
				os.Exit(0)
			}
			pids, err := spawnChildren()
			switch in {
			case "spawnhang":
				time.Sleep(time.Hour)
			case "spawnexit":
				os.Exit(0)
			}
			return pids, err
		})
	case "big": // a JSON string of n bytes; "print n", "raw n": n bytes of stray stdout without a newline
		p.Task = sdk.Raw(func(ctx context.Context, in []byte) ([]byte, error) {
			if n, ok := strings.CutPrefix(string(in), `"print `); ok {
				os.Stdout.Write(bytes.Repeat([]byte("y"), atoi(strings.TrimSuffix(n, `"`))))
				return []byte("0"), nil
			}
			if n, ok := strings.CutPrefix(string(in), `"raw `); ok {
				// fd 1 itself, as a plugin without the SDK writes (Serve
				// swapped os.Stdout for a pipe to gRPC, not fd 1).
				fd1 := os.NewFile(1, "stdout")
				fd1.Write(bytes.Repeat([]byte("z"), atoi(strings.TrimSuffix(n, `"`))))
				fd1.Write([]byte("\nraw line\n"))
				return []byte("0"), nil
			}
			n := atoi(string(in))
			return append(append([]byte{'"'}, bytes.Repeat([]byte("x"), n-2)...), '"'), nil
		})
	case "alloc": // touches n MiB and keeps it; returns n
		var keep [][]byte
		p.Task = sdk.Func(func(ctx context.Context, n int) (int, error) {
			for range n {
				keep = append(keep, bytes.Repeat([]byte{1}, 1<<20))
			}
			return n, nil
		})
	case "rogue": // serves the wire protocol without the SDK, ignoring max_result_bytes
		plugin.Serve(&plugin.ServeConfig{
			HandshakeConfig: sdk.Handshake,
			Plugins:         plugin.PluginSet{sdk.PluginName: roguePlugin{}},
			GRPCServer:      plugin.DefaultGRPCServer,
		})
		os.Exit(0)
	default:
		fmt.Fprintln(os.Stderr, "unknown fixture", name)
		os.Exit(2)
	}
	sdk.Serve(p)
}

// roguePlugin serves a Worker that answers item n with a result of n bytes,
// whatever max_result_bytes says: a plugin that breaks the contract.
type roguePlugin struct{ plugin.NetRPCUnsupportedPlugin }

func (roguePlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	workerpb.RegisterWorkerServer(s, rogueWorker{})
	return nil
}

func (roguePlugin) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, errors.New("the rogue fixture is a server")
}

type rogueWorker struct {
	workerpb.UnimplementedWorkerServer
}

func (rogueWorker) Describe(context.Context, *workerpb.DescribeRequest) (*workerpb.DescribeResponse, error) {
	return &workerpb.DescribeResponse{Name: "rogue", Version: "0"}, nil
}

func (rogueWorker) Init(context.Context, *workerpb.InitRequest) (*workerpb.InitResponse, error) {
	return &workerpb.InitResponse{}, nil
}

func (rogueWorker) Run(s workerpb.Worker_RunServer) error {
	for {
		b, err := s.Recv()
		if err != nil {
			return nil
		}
		resp := &workerpb.Batch{Seq: b.Seq}
		prev := uint32(0)
		for _, end := range b.Ends {
			resp.Data = append(resp.Data, bytes.Repeat([]byte("7"), atoi(string(b.Data[prev:end])))...)
			resp.Ends = append(resp.Ends, uint32(len(resp.Data)))
			prev = end
		}
		if err := s.Send(resp); err != nil {
			return err
		}
	}
}

// spawnChildren starts two sleeping children, one in the plugin's process
// group and one in a session of its own (which only a cgroup holds), and
// appends "group PID" and "session PID" lines to POOLTEST_DIR/children. It
// returns their pids.
func spawnChildren() (string, error) {
	var pids []string
	for _, kind := range []string{"group", "session"} {
		c := exec.Command("sleep", "3600")
		c.SysProcAttr = &syscall.SysProcAttr{Setsid: kind == "session"}
		if err := c.Start(); err != nil {
			return "", err
		}
		record(kind, c.Process.Pid)
		pids = append(pids, strconv.Itoa(c.Process.Pid))
	}
	return strings.Join(pids, " "), nil
}

// record appends "KIND PID" to POOLTEST_DIR/children (one write of a short
// line: appends do not interleave).
func record(kind string, pid int) {
	f, err := os.OpenFile(filepath.Join(os.Getenv("POOLTEST_DIR"), "children"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err == nil {
		fmt.Fprintf(f, "%s %d\n", kind, pid)
		f.Close()
	}
}

// fixture returns a Config that runs the named fixture plugin with its own
// POOLTEST_DIR. Plugin output and the pool's log go to a buffer that is
// printed if the test fails (t.Log would panic on a line that arrives after
// the test ended).
func fixture(t testing.TB, name string, env ...string) pool.Config {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	out := &lines{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("plugin stderr and pool log:\n%s", out.String())
		}
	})
	return pool.Config{
		Path: exe,
		Name: name,
		Env: append([]string{
			fixtureEnv + "=" + name,
			"GORACE=atexit_sleep_ms=0",
			"POOLTEST_DIR=" + t.TempDir(),
		}, env...),
		Stderr: out,
		Logger: hclog.New(&hclog.LoggerOptions{Name: "pooltest", Level: hclog.Warn, Output: out}),
	}
}

// env returns the value of key in cfg.Env (the last one wins, as in exec).
func env(cfg pool.Config, key string) string {
	v := ""
	for _, kv := range cfg.Env {
		if k, val, ok := strings.Cut(kv, "="); ok && k == key {
			v = val
		}
	}
	return v
}

// counted reads a counter file the fixtures append to (see count).
func counted(t testing.TB, cfg pool.Config, name string) int {
	t.Helper()
	n := testkit.Counted(env(cfg, "POOLTEST_DIR"), name)
	if n < 0 {
		t.Fatalf("cannot read counter %s", name)
	}
	return n
}

// hangBound is the generous "does not hang" bound of every blocking call
// in these tests. No test asserts a shorter wall-clock time.
const hangBound = 30 * time.Second

// start starts a pool and terminates it when the test ends.
func start(t testing.TB, cfg pool.Config) *pool.Pool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangBound)
	defer cancel()
	p, err := pool.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { bounded(t, "Terminate", func() { p.Terminate() }) })
	return p
}

// bounded runs f and fails the test, with every goroutine's stack, if it
// does not return within hangBound.
func bounded(t testing.TB, what string, f func()) {
	t.Helper()
	testkit.Bounded(t, hangBound, what, f)
}

// mapAll runs p.Map under a hangBound deadline and fails if it hit it.
func mapAll(t testing.TB, p *pool.Pool, items [][]byte) ([]pool.Result, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangBound)
	defer cancel()
	rs, err := p.Map(ctx, items)
	if ctx.Err() != nil {
		t.Fatalf("Map did not finish within %s", hangBound)
	}
	if len(rs) != len(items) {
		t.Fatalf("Map returned %d results for %d items", len(rs), len(items))
	}
	return rs, err
}

// mapped is the outcome of a Map run by mapAsync.
type mapped struct {
	rs  []pool.Result
	err error
}

// mapAsync runs p.Map over items on a goroutine of its own; the outcome
// arrives on the channel.
func mapAsync(p *pool.Pool, items [][]byte) <-chan mapped {
	done := make(chan mapped, 1)
	go func() {
		rs, err := p.Map(context.Background(), items)
		done <- mapped{rs, err}
	}()
	return done
}

// waitUntil polls cond until it holds, failing the test after hangBound.
func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	testkit.Eventually(t, hangBound, what, cond)
}

// lines is a concurrency-safe writer that records every Write.
type lines struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	writes []string
}

func (l *lines) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.writes = append(l.writes, string(b))
	return l.buf.Write(b)
}

func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *lines) Writes() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.writes...)
}

func strs(ss ...string) [][]byte {
	items := make([][]byte, len(ss))
	for i, s := range ss {
		items[i] = []byte(strconv.Quote(s))
	}
	return items
}

// pids returns the live worker pids (0 for a slot that is restarting).
func pids(p *pool.Pool) []int { return testkit.Pids(p) }

// livePids waits until every slot has a live worker and returns their pids.
func livePids(t testing.TB, p *pool.Pool) []int {
	t.Helper()
	deadline := time.Now().Add(hangBound)
	for {
		ps := pids(p)
		if !slices.Contains(ps, 0) {
			return ps
		}
		if time.Now().After(deadline) {
			t.Fatalf("a worker slot stayed empty for %s: pids %v", hangBound, ps)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// processes returns the pids of live (not zombie) processes started for
// cfg: those whose environment holds cfg's POOLTEST_DIR. Linux only.
func processes(t testing.TB, cfg pool.Config) []int {
	t.Helper()
	if runtime.GOOS != "linux" {
		return nil
	}
	return testkit.Processes(testkit.WithEnv("POOLTEST_DIR=" + env(cfg, "POOLTEST_DIR")))
}
