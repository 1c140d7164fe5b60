package pool_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pluginpool/pluginpool/host/pool"
	"github.com/pluginpool/pluginpool/internal/testkit"
)

// connectEnv makes this binary a client that connects to the unix socket
// it names and says whether it could (see TestPrivateSockets).
const connectEnv = "POOLTEST_CONNECT"

func runConnect(path string) int {
	c, err := net.Dial("unix", path)
	if err != nil {
		fmt.Println(err)
		return 1
	}
	c.Close()
	fmt.Println("connected")
	return 0
}

// No plugin shares the host's stdin: a plugin that reads it before
// sdk.Serve (or a plugin without the SDK) reads /dev/null, and the host's
// input is still all there.
func TestStdinNotShared(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stdin
	os.Stdin = r // what go-plugin hands its plugins
	t.Cleanup(func() { os.Stdin = old; r.Close() })
	const input = "1\n2\n3\n"
	if _, err := w.WriteString(input); err != nil {
		t.Fatal(err)
	}
	w.Close()

	cfg := fixture(t, "stdin")
	cfg.Workers = 2
	p := start(t, cfg)
	rs, err := mapAll(t, p, testkit.Ints(4))
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rs {
		if string(r.Value) != `"0 /dev/null"` {
			t.Errorf("plugin %d read %s from stdin; want 0 bytes from /dev/null", i, r.Value)
		}
	}
	if got, _ := io.ReadAll(r); string(got) != input {
		t.Errorf("the host's stdin holds %q after the plugins started; want %q", got, input)
	}
}

// Each plugin's socket is in a directory of its own inside the pool's
// private one (0700), even under umask 000; sockets of killed workers do
// not pile up; nothing is left in the temporary directory after Close;
// and another user cannot connect.
// The descriptors the host passes a plugin, the start ledger and the lane,
// stay with the plugin: a process it starts inherits neither, nor any
// other socket.
func TestDescriptorsNotInherited(t *testing.T) {
	p := start(t, fixture(t, "childfds"))
	if info := p.Info(); !info.Lane || !info.StartLedger {
		t.Fatalf("Info = %+v: the Go SDK takes the lane and keeps the ledger", info)
	}
	r, err := p.Apply(context.Background(), []byte("1"))
	if err != nil {
		t.Fatal(err)
	}
	var fds string
	if err := json.Unmarshal(r.Value, &fds); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(fds, "socket:") || strings.Contains(fds, "memfd:") {
		t.Errorf("a plugin's child inherited the host's descriptors:\n%s", fds)
	}
}

func TestPrivateSockets(t *testing.T) {
	cfg := fixture(t, "double")
	cfg.Workers = 2
	client := worldExecutable(t) // before TMPDIR moves into a private directory
	tmp := shortTempDir(t)
	t.Setenv("TMPDIR", tmp)
	defer syscall.Umask(syscall.Umask(0))

	p := start(t, cfg)
	ents, _ := os.ReadDir(tmp)
	if len(ents) != 1 || !strings.HasPrefix(ents[0].Name(), "pluginpool-") {
		t.Fatalf("temporary directory holds %v; want the pool's directory alone", ents)
	}
	dir := filepath.Join(tmp, ents[0].Name())
	if st, _ := os.Stat(dir); st.Mode().Perm() != 0o700 {
		t.Errorf("the pool's directory has mode %v; want 0700", st.Mode().Perm())
	}
	sockets := func() []string {
		var out []string
		filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err == nil && d.Type()&fs.ModeSocket != 0 {
				out = append(out, path)
			}
			return nil
		})
		return out
	}
	if s := sockets(); len(s) != 2 {
		t.Fatalf("sockets %v; want one per worker", s)
	}
	for _, s := range sockets() {
		if st, _ := os.Stat(filepath.Dir(s)); st.Mode().Perm() != 0o700 || filepath.Dir(filepath.Dir(s)) != dir {
			t.Errorf("socket %s is in a directory with mode %v; want a 0700 directory in the pool's", s, st.Mode().Perm())
		}
	}

	for range 3 {
		killOne(t, p)
	}
	if s := sockets(); len(s) != 2 {
		t.Errorf("after 3 killed workers, sockets %v; want the 2 live workers' only", s)
	}

	t.Run("other user", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("SKIPPED: needs root to run a client as another user")
		}
		try := func(uid uint32) string {
			cmd := exec.Command(client)
			cmd.Env = []string{connectEnv + "=" + sockets()[0]}
			if uid != 0 {
				cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
			}
			out, err := cmd.CombinedOutput()
			if len(out) == 0 && err != nil {
				return err.Error()
			}
			return strings.TrimSpace(string(out))
		}
		if got := try(0); got != "connected" {
			t.Fatalf("the client run as root: %q; want it connected (the check below means nothing otherwise)", got)
		}
		if got := try(65534); !strings.Contains(got, "permission denied") {
			t.Errorf("a client run as uid 65534: %q; want permission denied", got)
		}
	})

	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
		t.Errorf("after Close the temporary directory holds %v; want nothing", ents)
	}
}

// shortTempDir is a temporary directory to use as TMPDIR: short enough a
// path for the pool to put its sockets in (t.TempDir's are too long).
func shortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "pt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// killOne SIGKILLs a worker and waits until its slot has a new one.
func killOne(t *testing.T, p *pool.Pool) {
	t.Helper()
	before := livePids(t, p)
	syscall.Kill(before[0], syscall.SIGKILL)
	deadline := time.Now().Add(hangBound)
	for {
		now := pids(p)
		if !slices.Contains(now, 0) && !slices.Contains(now, before[0]) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no replacement for killed worker %d: pids %v", before[0], now)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// worldExecutable copies this test binary where any user may run it.
func worldExecutable(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "pooltest-world-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "client")
	if err := os.WriteFile(path, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// With a sha256, workers run a private copy of exactly the bytes that were
// checked: replacing the file (by rename, or by rewriting it in place) once
// the pool has started changes nothing, restarts included.
func TestVerifiedExec(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	plugin := filepath.Join(dir, "plugin")
	copyFile(t, exe, plugin)
	cfg := fixture(t, "exe")
	cfg.Path, cfg.SHA256, cfg.Workers = plugin, sha256File(t, plugin), 2
	p := start(t, cfg)

	running := func() {
		t.Helper()
		rs, err := mapAll(t, p, testkit.Ints(4))
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			var s string
			fmt.Sscanf(string(r.Value), "%q", &s)
			exe, argv0, _ := strings.Cut(s, " ")
			if exe == plugin || filepath.Base(exe) != "plugin" || !strings.Contains(exe, "/pluginpool-") || argv0 != exe {
				t.Errorf("a worker runs %q (argv[0] %q); want the pool's private copy of %s", exe, argv0, plugin)
			}
		}
	}
	running()

	evil := []byte("#!/bin/sh\necho ran >\"$POOLTEST_DIR/evil\"\nexit 3\n")
	swaps := []struct {
		how  string
		swap func() error
	}{
		{"renamed over", func() error {
			tmp := filepath.Join(dir, "evil")
			if err := os.WriteFile(tmp, evil, 0o755); err != nil {
				return err
			}
			return os.Rename(tmp, plugin)
		}},
		{"rewritten in place", func() error { return os.WriteFile(plugin, evil, 0o755) }},
	}
	for _, s := range swaps {
		if err := s.swap(); err != nil {
			t.Fatal(err)
		}
		killOne(t, p)
		killOne(t, p)
		running()
		if _, err := os.Stat(filepath.Join(env(cfg, "POOLTEST_DIR"), "evil")); err == nil {
			t.Errorf("the file %s after the pool started ran", s.how)
		}
	}
}

// A verified script runs from the private copy, and finds the files next
// to the original: the copy's directory links to them.
func TestVerifiedScript(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "helper.sh"), []byte("POOLTEST_HELPER=loaded\nexport POOLTEST_HELPER\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(dir, "plugin.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\n. \"$(dirname \"$0\")/helper.sh\"\nexec \"$POOLTEST_EXE\" \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := fixture(t, "env", "POOLTEST_EXE="+exe)
	cfg.Path, cfg.SHA256, cfg.Workers = script, sha256File(t, script), 1
	p := start(t, cfg)
	if r, err := p.Apply(context.Background(), []byte(`"POOLTEST_HELPER"`)); err != nil || string(r.Value) != `"loaded"` {
		t.Errorf("the script's helper: %s, %v; want it sourced from next to the script", r.Value, err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

// A plugin's child processes die with it: when it is killed for a timeout,
// when it exits by itself, when the pool closes or terminates. With process
// groups alone (no cgroup delegated), children that stayed in the plugin's
// group; with a cgroup per worker, those that left it too.
func TestProcessTrees(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("process groups and cgroups per worker are Linux-only")
	}
	hasCgroup, _ := pool.CgroupSupport()
	t.Run("process groups", func(t *testing.T) {
		defer pool.WithoutCgroups()()
		testProcessTrees(t, false)
	})
	// A child that left the group and holds the plugin's stderr would keep
	// go-plugin reading, and the worker from being reaped, forever: its
	// output is closed pipeGrace (2 s) after the plugin died.
	t.Run("escaped child holding stderr", func(t *testing.T) {
		defer pool.WithoutCgroups()()
		cfg := fixture(t, "spawn")
		cfg.Workers, cfg.MaxAttempts = 1, 1
		p := start(t, cfg)
		if _, err := mapAll(t, p, strs("spawnheld")); !errors.Is(err, pool.ErrCrashed) {
			t.Fatalf("Map: %v; want the worker's exit reported", err)
		}
		if r, err := p.Apply(context.Background(), strs("spawn")[0]); err != nil || len(strings.Fields(string(r.Value))) != 2 {
			t.Errorf("the replacement worker: %s, %v", r.Value, err)
		}
		p.Close()
		checkChildrenDie(t, env(cfg, "POOLTEST_DIR"), false)
	})
	t.Run("cgroups", func(t *testing.T) {
		if !hasCgroup {
			t.Skip("SKIPPED: no cgroup v2 delegated to this process: children that leave the plugin's process group are not ended here")
		}
		testProcessTrees(t, true)
	})
}

func testProcessTrees(t *testing.T, cgroup bool) {
	cases := []struct {
		name  string
		items []string
		edit  func(*pool.Config)
		end   func(*pool.Pool) error
		want  error // of the Map
	}{
		{name: "timeout kill", items: []string{"spawnhang"}, want: pool.ErrTimeout,
			edit: func(c *pool.Config) { c.TaskTimeout, c.KillGrace = 100*time.Millisecond, 100*time.Millisecond }},
		{name: "plugin exits", items: []string{"spawnexit"}, want: pool.ErrCrashed},
		{name: "close", items: []string{"spawn", "spawn"}, end: (*pool.Pool).Close},
		{name: "terminate", items: []string{"spawn", "spawn"}, end: (*pool.Pool).Terminate},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := fixture(t, "spawn")
			cfg.Workers = 2
			if c.edit != nil {
				c.edit(&cfg)
			}
			p := start(t, cfg)
			rs, err := mapAll(t, p, strs(c.items...))
			if !errors.Is(err, c.want) || (c.want == nil && err != nil) {
				t.Fatalf("Map: %v; want %v", err, c.want)
			}
			if c.end != nil {
				for _, r := range rs {
					if len(strings.Fields(string(r.Value))) != 2 {
						t.Fatalf("spawn returned %q; want two pids", r.Value)
					}
				}
				if err := c.end(p); err != nil {
					t.Fatal(err)
				}
			}
			checkChildrenDie(t, env(cfg, "POOLTEST_DIR"), cgroup)
		})
	}
}

// checkChildrenDie waits for every child the spawn fixture started, as
// listed in dir/children, to be gone (those in a session of their own only
// when checkSessions).
func checkChildrenDie(t *testing.T, dir string, checkSessions bool) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "children"))
	if err != nil {
		t.Fatal(err)
	}
	var watch []int
	for line := range strings.Lines(string(b)) {
		kind, f, _ := strings.Cut(strings.TrimSpace(line), " ")
		pid := atoi(f)
		if kind == "group" || checkSessions {
			watch = append(watch, pid)
		} else {
			// Nothing ends it here: it would outlive the tests.
			t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
		}
	}
	if len(watch) == 0 {
		t.Fatal("the fixture started no children")
	}
	if left := stillAlive(watch, 10*time.Second); len(left) > 0 {
		t.Fatalf("children %v of %v outlived their plugin by 10 s (children file:\n%s)", left, watch, b)
	}
}

// A worker over MaxMemory dies and is reported as such, never as a mystery
// crash; a worker within it works.
func TestMaxMemory(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("max_memory is Linux-only")
	}
	_, memCgroup := pool.CgroupSupport()
	if !memCgroup {
		t.Log("LOUD SKIP of cgroup memory.max: the memory controller is not delegated here; testing the RLIMIT_DATA fallback")
	}
	// The race detector's runtime needs ~384 MiB of RLIMIT_DATA to start,
	// more to run.
	const limit = 1 << 30
	cfg := fixture(t, "alloc")
	cfg.Workers, cfg.MaxMemory = 1, limit
	p := start(t, cfg)
	if r, err := p.Apply(context.Background(), []byte("64")); err != nil || string(r.Value) != "64" {
		t.Fatalf("64 MiB under a 1 GiB max_memory: %s, %v", r.Value, err)
	}

	cfg = fixture(t, "leak")
	cfg.Workers, cfg.MaxMemory, cfg.MaxAttempts = 1, limit, 1
	p = start(t, cfg)
	_, err := p.Apply(context.Background(), []byte("1"))
	var ce *pool.CrashError
	if !errors.Is(err, pool.ErrMaxMemory) || !errors.Is(err, pool.ErrCrashed) || !errors.As(err, &ce) || ce.MaxMemory != limit {
		t.Fatalf("a worker allocating without end: %v; want a *CrashError matching ErrMaxMemory", err)
	}
	if want := fmt.Sprintf("leak: worker 0 (pid %d) exceeded max_memory 1GiB", ce.Pid); !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %q; want it to start %q", err, want)
	}

	// Too small a limit to start in says so: RLIMIT_DATA counts thread
	// stacks, so 32 MiB is too small for any Go plugin there.
	if memCgroup {
		return
	}
	cfg = fixture(t, "double")
	cfg.Workers, cfg.MaxMemory = 1, 32<<20
	_, err = pool.Start(context.Background(), cfg)
	if !errors.Is(err, pool.ErrStart) || !strings.Contains(err.Error(), "max_memory 32MiB") || !strings.Contains(err.Error(), "RLIMIT_DATA") {
		t.Errorf("starting under 32 MiB: %v; want a start error saying max_memory is too small", err)
	}
}

// A plugin told max_result_bytes fails an item whose result is larger, as
// that item's task error; the other items of its batch are answered.
func TestMaxResultBytes(t *testing.T) {
	cfg := fixture(t, "big")
	cfg.Workers, cfg.MaxResultBytes, cfg.ChunkSize = 1, 1000, 10
	p := start(t, cfg)
	items := [][]byte{[]byte("500"), []byte("2000"), []byte("10"), []byte("1000"), []byte("1001")}
	rs, _ := mapAll(t, p, items)
	for i, r := range rs {
		n := atoi(string(items[i]))
		if n <= 1000 {
			if r.Err != nil || len(r.Value) != n {
				t.Errorf("item %d (%d bytes): %d bytes, %v; want its result", i, n, len(r.Value), r.Err)
			}
			continue
		}
		if !errors.Is(r.Err, pool.ErrTask) || !strings.Contains(r.Err.Error(), fmt.Sprintf("result is %d bytes", n)) ||
			!strings.Contains(r.Err.Error(), "max_result_bytes") {
			t.Errorf("item %d (%d bytes): %v; want a task error naming its size and max_result_bytes", i, n, r.Err)
		}
	}
}

// The host checks max_result_bytes itself: a plugin that ignores it has
// its oversized results fail, and a message too large to be a batch of
// results (over max_result_bytes + 1 MiB) is refused before it is read:
// the worker is ended, its items fail, and the error says why.
func TestMaxResultBytesEnforced(t *testing.T) {
	cfg := fixture(t, "rogue")
	cfg.Workers, cfg.MaxResultBytes, cfg.ChunkSize = 1, 1000, 10
	p := start(t, cfg)
	items := [][]byte{[]byte("500"), []byte("2000"), []byte("10")}
	rs, _ := mapAll(t, p, items)
	if rs[0].Err != nil || len(rs[0].Value) != 500 || rs[2].Err != nil || len(rs[2].Value) != 10 {
		t.Errorf("items within the limit: %v, %v", rs[0].Err, rs[2].Err)
	}
	var tl *pool.TooLargeError
	if !errors.As(rs[1].Err, &tl) || !errors.Is(rs[1].Err, pool.ErrTooLarge) || !tl.Result ||
		rs[1].Err.Error() != "result is 2000 bytes, over the 1000-byte limit (max_result_bytes)" {
		t.Errorf("a 2000-byte result: %v; want a *TooLargeError for the result", rs[1].Err)
	}

	rs, _ = mapAll(t, p, [][]byte{[]byte("3000000")})
	if !errors.Is(rs[0].Err, pool.ErrCrashed) || !strings.Contains(rs[0].Err.Error(), "max_result_bytes") {
		t.Errorf("a 3 MB result: %v; want the worker ended for a message over max_result_bytes", rs[0].Err)
	}
}

// Stray output without a newline reaches Config.Stderr in bounded lines:
// the host does not hold a line of unbounded length.
func TestLongLineCut(t *testing.T) {
	const n = 4*64<<10 + 1000
	got := strayLines(t, 4, fmt.Sprintf(`"print %d"`, n))
	if len(got) != 4 {
		t.Fatalf("%d lines forwarded; want 4 pieces of 64 KiB (the last 1000 bytes wait for their newline)", len(got))
	}
	for _, line := range got {
		if line != strings.Repeat("y", 64<<10) {
			t.Errorf("forwarded a line of %d bytes; want 65536 bytes of the output", len(line))
		}
	}
}

// What a plugin writes to its real stdout after the handshake (a plugin
// without the SDK, a C library) is forwarded in bounded lines too, never
// dropped; before, a line of 64 KiB stopped go-plugin's reader and the
// plugin's next write hung.
func TestRawStdout(t *testing.T) {
	const n = 2*64<<10 + 10
	want := []string{strings.Repeat("z", 64<<10), strings.Repeat("z", 64<<10), strings.Repeat("z", 10), "raw line"}
	want = append(want, want...)
	raw := fmt.Sprintf(`"raw %d"`, n)
	if got := strayLines(t, len(want), raw, raw); !slices.Equal(got, want) {
		t.Errorf("forwarded %d lines of %v bytes; want pieces of 64 KiB, the rest, and \"raw line\", twice", len(got), lens(got))
	}
}

// strayLines applies items, one after the other, to a worker of the "big"
// fixture and returns the stray stdout lines it forwarded, without their
// tags, once there are want of them (or hangBound passed).
func strayLines(t *testing.T, want int, items ...string) []string {
	t.Helper()
	cfg := fixture(t, "big")
	cfg.Workers = 1
	out := &lines{}
	cfg.Stderr = out
	p := start(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), hangBound)
	defer cancel()
	for _, item := range items {
		if _, err := p.Apply(ctx, []byte(item)); err != nil {
			t.Fatal(err)
		}
	}
	for deadline := time.Now().Add(hangBound); len(out.Writes()) < want && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	var got []string
	for _, w := range out.Writes() {
		_, line, _ := strings.Cut(strings.TrimSuffix(w, "\n"), "stdout] ")
		got = append(got, line)
	}
	return got
}

func lens(ss []string) []int {
	var n []int
	for _, s := range ss {
		n = append(n, len(s))
	}
	return n
}

// The host's environment reaches plugins unless SkipHostEnv; then only
// PassEnv's variables and Env do.
func TestEnvironment(t *testing.T) {
	t.Setenv("POOLTEST_SECRET", "s3cret")
	get := func(p *pool.Pool, key string) string {
		t.Helper()
		r, err := p.Apply(context.Background(), []byte(strconv.Quote(key)))
		if err != nil {
			t.Fatal(err)
		}
		s, _ := strconv.Unquote(string(r.Value))
		return s
	}
	cfg := fixture(t, "env")
	cfg.Workers = 1
	p := start(t, cfg)
	if got := get(p, "POOLTEST_SECRET"); got != "s3cret" {
		t.Errorf("inherited POOLTEST_SECRET = %q; want s3cret", got)
	}

	cfg.SkipHostEnv, cfg.PassEnv = true, []string{"PATH", "POOLTEST_NOT_SET"}
	p = start(t, cfg)
	for key, want := range map[string]string{
		"POOLTEST_SECRET":  "<unset>",
		"POOLTEST_NOT_SET": "<unset>",
		"PATH":             os.Getenv("PATH"),
		"POOLTEST_DIR":     env(cfg, "POOLTEST_DIR"), // from Env
	} {
		if got := get(p, key); got != want {
			t.Errorf("with SkipHostEnv, %s = %q; want %q", key, got, want)
		}
	}
}
