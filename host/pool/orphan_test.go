package pool_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pluginpool/pluginpool/host/pool"
)

// runHost is this binary run as a host (POOLTEST_HOST=1, from
// TestOrphans): it starts a pool of the "hang" fixture, prints the worker
// pids on one line, then "mapping", and blocks in a Map that never ends.
func runHost() int {
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cfg := pool.Config{
		Path:    exe,
		Name:    "hang",
		Workers: 2,
		Env:     []string{fixtureEnv + "=hang", "GORACE=atexit_sleep_ms=0"},
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
	p.Map(ctx, strs("hang", "hang", "hang", "hang"))
	return 0
}

// A host SIGKILLed in the middle of a Map leaves no plugin process behind:
// the plugins get the kernel's parent-death signal.
func TestOrphans(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("Pdeathsig is Linux-only; elsewhere the SDK's parent watch takes up to 500 ms more")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	host := exec.Command(exe)
	host.Env = append(os.Environ(), "POOLTEST_HOST=1", "POOLTEST_DIR="+dir, "GORACE=atexit_sleep_ms=0")
	host.Stderr = os.Stderr
	out, err := host.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := host.Start(); err != nil {
		t.Fatal(err)
	}
	defer host.Process.Kill()

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
		if !alive(pid) {
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
	deadline := time.Now().Add(time.Second)
	for {
		var left []int
		for _, pid := range plugins {
			if alive(pid) {
				left = append(left, pid)
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("plugin processes %v outlived their SIGKILLed host by a second", left)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
