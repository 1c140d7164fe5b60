package cluster_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pluginpool/pluginpool/host/cluster"
	"github.com/pluginpool/pluginpool/internal/testkit"
)

// proc is a process of the built pluginpool binary run by a test.
type proc struct {
	t      testing.TB
	name   string
	cmd    *exec.Cmd
	stderr string // file holding its stderr
	done   chan struct{}
	err    error // its exit, once done is closed
}

// run starts bin/pluginpool with args in dir; stdin and stdout may be "".
// The process is killed at the end of the test if it is still running,
// and its stderr is logged if the test failed.
func run(t testing.TB, name, dir string, env []string, stdin, stdout string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, name: name, done: make(chan struct{}), stderr: filepath.Join(t.TempDir(), name+".stderr")}
	p.cmd = exec.Command(filepath.Join(binDir, "pluginpool"), args...)
	p.cmd.Dir = dir
	p.cmd.Env = append(os.Environ(), env...)
	errf, err := os.Create(p.stderr)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stderr = errf
	if stdin != "" {
		f, err := os.Open(stdin)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		p.cmd.Stdin = f
	}
	if stdout != "" {
		f, err := os.Create(stdout)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		p.cmd.Stdout = f
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		errf.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.signal(syscall.SIGCONT)
		p.signal(syscall.SIGKILL)
		<-p.done
		if t.Failed() {
			t.Logf("%s (pid %d) stderr:\n%s", p.name, p.cmd.Process.Pid, p.tail(60))
		}
	})
	return p
}

func (p *proc) signal(s syscall.Signal) { _ = p.cmd.Process.Signal(s) }

// wait waits for the process to exit within d and returns its exit code.
func (p *proc) wait(d time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(d):
		p.t.Fatalf("%s did not exit within %s", p.name, d)
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	if p.err != nil {
		p.t.Fatalf("%s: %v", p.name, p.err)
	}
	return 0
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// log returns what the process wrote to stderr so far.
func (p *proc) log() string {
	b, _ := os.ReadFile(p.stderr)
	return string(b)
}

func (p *proc) tail(n int) string {
	lines := strings.Split(strings.TrimRight(p.log(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// freePort returns a loopback port nothing listens on now.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// serverProc starts `pluginpool server` on a loopback port and waits until
// its JetStream stream is ready.
func serverProc(t testing.TB, name string, env []string, args ...string) (*proc, string) {
	t.Helper()
	port := freePort(t)
	url := "nats://127.0.0.1:" + strconv.Itoa(port)
	args = append([]string{"server", "--listen", "127.0.0.1:" + strconv.Itoa(port), "--store", t.TempDir()}, args...)
	p := run(t, name, t.TempDir(), env, "", "", args...)
	return p, url
}

// waitStream waits until the cluster's stream exists, with replicas.
func waitStream(t testing.TB, url, token string, replicas int) {
	t.Helper()
	testkit.Eventually(t, 60*time.Second, "the stream is not ready", func() bool {
		nc, err := nats.Connect(url, nats.Token(token), nats.Timeout(time.Second))
		if err != nil {
			return false
		}
		defer nc.Close()
		js, _ := jetstream.New(nc)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		s, err := js.Stream(ctx, "PLUGINPOOL_BATCHES")
		if err != nil {
			return false
		}
		info, err := s.Info(ctx)
		if err != nil || info.Config.Replicas != replicas {
			return false
		}
		if replicas > 1 && (info.Cluster == nil || info.Cluster.Leader == "" || len(info.Cluster.Replicas) != replicas-1) {
			return false
		}
		for _, bucket := range []string{"pluginpool_jobs", "pluginpool_workers"} {
			if _, err := js.KeyValue(ctx, bucket); err != nil {
				return false
			}
		}
		return true
	})
}

// workerProc starts `pluginpool worker` with config cfg and waits until it
// is in the registry. It returns the process and the worker's id.
func workerProc(t testing.TB, name, url, cfg string, env []string, args ...string) (*proc, string) {
	t.Helper()
	args = append([]string{"worker", "-c", cfg, "--connect", url}, args...)
	p := run(t, name, filepath.Dir(cfg), env, "", "", args...)
	token := ""
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "PLUGINPOOL_TOKEN="); ok {
			token = v
		}
	}
	var id string
	testkit.Eventually(t, 60*time.Second, name+" did not join the registry", func() bool {
		if p.exited() {
			t.Fatalf("%s exited: %s", name, p.tail(20))
		}
		for _, w := range listWorkers(t, url, token) {
			if w.Pid == p.cmd.Process.Pid {
				id = w.ID
				return true
			}
		}
		return false
	})
	return p, id
}

func listWorkers(t testing.TB, url, token string) []cluster.WorkerInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, err := cluster.ListWorkers(ctx, cluster.NATS{URL: url, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	return ws
}

// running returns the batches worker id runs now, and its jobs.
func running(t testing.TB, url, token, id string) (batches, jobs int) {
	for _, w := range listWorkers(t, url, token) {
		if w.ID == id {
			for _, p := range w.Plugins {
				batches += p.Running
			}
			return batches, w.Jobs
		}
	}
	return -1, -1
}

// numbers writes the lines 1..n to a file.
func numbers(t testing.TB, dir string, n int) string {
	t.Helper()
	return testkit.WriteFile(t, dir, fmt.Sprintf("numbers-%d.jsonl", n), testkit.Numbers(1, n))
}

// checkDoubledFile checks that file holds 2, 4, ..., 2n, one per line.
func checkDoubledFile(t testing.TB, path string, n int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	i := 0
	for sc.Scan() {
		i++
		if i > n {
			t.Fatalf("%s: more than %d lines", path, n)
		}
		if got, want := sc.Text(), strconv.Itoa(2*i); got != want {
			t.Fatalf("%s line %d: %q, want %q", path, i, got, want)
		}
	}
	if i != n {
		t.Fatalf("%s: %d lines, want %d", path, i, n)
	}
}

// fileSize is path's size, or 0.
func fileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

// self is this test binary, which serves the fixture plugins.
func self(t testing.TB) string {
	t.Helper()
	p, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// fixtureTable is a [plugins.NAME] table serving fixture mode.
func fixtureTable(t testing.TB, name, path, mode string, workers int, env ...string) string {
	t.Helper()
	e := fmt.Sprintf("%s = %q, GORACE = \"atexit_sleep_ms=0\"", fixtureEnv, mode)
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		e += fmt.Sprintf(", %s = %q", k, v)
	}
	return fmt.Sprintf("[plugins.%s]\npath = %q\nworkers = %d\nenv = { %s }\n\n", name, path, workers, e)
}
