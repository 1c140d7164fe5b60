package pool_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pluginpool/pluginpool/host/pool"
	"github.com/pluginpool/pluginpool/internal/testkit"
)

// runHost is this binary run as a host (POOLTEST_HOST set, from
// TestOrphans and TestOrphanTrees): it starts a pool of 2 workers, prints
// their pids on one line, then "mapping", and blocks in a Map that never
// ends. POOLTEST_HOST=spawn runs the "spawn" fixture, whose hanging tasks
// start children first (and POOLTEST_NOCGROUP=1 does without cgroups);
// otherwise the "hang" fixture.
func runHost() int {
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	name, item := "hang", "hang"
	if os.Getenv("POOLTEST_HOST") == "spawn" {
		name, item = "spawn", "spawnhang"
	}
	if os.Getenv("POOLTEST_NOCGROUP") != "" {
		pool.WithoutCgroups()
	}
	cfg := pool.Config{
		Path:    exe,
		Name:    name,
		Workers: 2,
		Env:     []string{fixtureEnv + "=" + name, "GORACE=atexit_sleep_ms=0"},
	}
	ctx := context.Background()
	p, err := pool.Start(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var ps []string
	for _, w := range p.Stats().Workers {
		ps = append(ps, strconv.Itoa(w.Pid))
	}
	fmt.Println(strings.Join(ps, " "))
	fmt.Println("mapping")
	p.Map(ctx, strs(item, item, item, item))
	return 0
}

// A host SIGKILLed in the middle of a Map leaves no plugin process behind:
// the plugins get the kernel's parent-death signal.
func TestOrphans(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("Pdeathsig is Linux-only; elsewhere the SDK's parent watch takes up to 500 ms more")
	}
	host, out := startHost(t, "POOLTEST_HOST=hang", "POOLTEST_DIR="+t.TempDir())
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	read := func() string {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("the host exited early")
			}
			return l
		case <-time.After(hangBound):
			t.Fatal("the host printed nothing")
		}
		return ""
	}
	var plugins []int
	for _, f := range strings.Fields(read()) {
		pid, err := strconv.Atoi(f)
		if err != nil || pid <= 0 {
			t.Fatalf("host printed pid %q", f)
		}
		plugins = append(plugins, pid)
	}
	if read() != "mapping" {
		t.Fatal("the host did not start mapping")
	}
	time.Sleep(200 * time.Millisecond) // the hanging tasks are running
	for _, pid := range plugins {
		if !testkit.Alive(pid) {
			t.Fatalf("plugin %d died before the host", pid)
		}
	}

	if err := host.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	host.Wait()
	for range lines {
	}
	// The bound: no plugin is alive one second later.
	if left := stillAlive(plugins, time.Second); len(left) > 0 {
		t.Fatalf("plugin processes %v outlived their SIGKILLed host by a second", left)
	}
}

// startHost runs this binary as a host (runHost) with env added to its
// environment, and returns it and its stdout. The host is killed when the
// test ends.
func startHost(t *testing.T, env ...string) (*exec.Cmd, io.Reader) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	host := exec.Command(exe)
	host.Env = append(append(os.Environ(), "GORACE=atexit_sleep_ms=0"), env...)
	host.Stderr = os.Stderr
	out, err := host.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := host.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { host.Process.Kill() })
	return host, out
}

// stillAlive waits up to d for the processes pids to be gone, and returns
// those that are not.
func stillAlive(pids []int, d time.Duration) []int {
	deadline := time.Now().Add(d)
	for {
		var left []int
		for _, pid := range pids {
			if testkit.Alive(pid) {
				left = append(left, pid)
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A host SIGKILLed while its plugins' tasks have children running leaves
// none of them behind, and no private directory: the pool's watcher ends
// the workers' process groups (and cgroups, where there are) and cleans
// up. Children that left their plugin's process group die too where
// workers get a cgroup.
func TestOrphanTrees(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("process groups, cgroups and the watcher are Linux-only")
	}
	hasCgroup, _ := pool.CgroupSupport()
	t.Run("process groups", func(t *testing.T) { testOrphanTrees(t, false) })
	t.Run("cgroups", func(t *testing.T) {
		if !hasCgroup {
			t.Skip("SKIPPED: no cgroup v2 delegated to this process: children that leave the plugin's process group outlive a SIGKILLed host here")
		}
		testOrphanTrees(t, true)
	})
}

func testOrphanTrees(t *testing.T, cgroup bool) {
	dir, tmp := t.TempDir(), shortTempDir(t)
	env := []string{"POOLTEST_HOST=spawn", "POOLTEST_DIR=" + dir, "TMPDIR=" + tmp}
	if !cgroup {
		env = append(env, "POOLTEST_NOCGROUP=1")
	}
	host, out := startHost(t, env...)
	sc := bufio.NewScanner(out)
	for sc.Scan() && sc.Text() != "mapping" {
	}
	// Both workers are in a hanging task once each has started its children.
	children := filepath.Join(dir, "children")
	deadline := time.Now().Add(hangBound)
	for {
		b, _ := os.ReadFile(children)
		if strings.Count(string(b), "\n") >= 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the plugins started %q children", b)
		}
		time.Sleep(10 * time.Millisecond)
	}

	if err := host.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	host.Wait()
	checkChildrenDie(t, dir, cgroup)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		ents, _ := os.ReadDir(tmp)
		if len(ents) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the SIGKILLed host left %v in its temporary directory", ents)
		}
	}
	if cgroup {
		left, _ := filepath.Glob(filepath.Join(pool.OwnCgroup(), fmt.Sprintf("pluginpool-%d-*", host.Process.Pid)))
		for deadline := time.Now().Add(10 * time.Second); len(left) > 0; time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("the SIGKILLed host left cgroups %v", left)
			}
			left, _ = filepath.Glob(filepath.Join(pool.OwnCgroup(), fmt.Sprintf("pluginpool-%d-*", host.Process.Pid)))
		}
	}
}
