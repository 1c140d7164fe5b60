package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pluginpool/pluginpool/internal/testkit"
)

// crashDir returns a directory whose pool.toml has the crashfrom fixture
// (with max_restarts = 2) besides double and printer, and extra.
func crashDir(t *testing.T, extra string, files map[string]string) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return pipelineDir(t, fmt.Sprintf(`
[plugins.crashfrom]
path = %q
env = { %s = "crashfrom", GORACE = "atexit_sleep_ms=0" }
workers = 1
max_restarts = 2
`, self, fixtureEnv)+extra, files)
}

// A plugin that crashes on every item from 1000 on degrades its pool: map
// reports the one item that used up its attempts, why the pool degraded
// (once), and how many items were not run, from which line, counting the
// input it never read; the exit status is 3. Stderr does not grow with the
// input (it was a 600-byte error per pending item).
func TestMapDegraded(t *testing.T) {
	dir := crashDir(t, "", map[string]string{})
	var sizes []int
	for _, n := range []int{20_000, 100_000} {
		stdout, stderr, code := mainIn(t, dir, strings.NewReader(testkit.Numbers(1, n)), nil, "map", "crashfrom")
		if code != ExitStart {
			t.Errorf("%d items: exit %d; want %d", n, code, ExitStart)
		}
		if want := strings.Join(strings.Fields(doubled(999)), "\n") + "\n"; stdout != want {
			t.Errorf("%d items: stdout has %d lines; want the 999 before the crash loop", n, strings.Count(stdout, "\n"))
		}
		summary := fmt.Sprintf("pluginpool: %d of %d items were not run, from line 1001, because the pool degraded; 1 failed\n", n-1000, n)
		if strings.Count(stderr, summary) != 1 {
			t.Errorf("%d items: stderr lacks the summary %q:\n%s", n, summary, stderr)
		}
		if got := regexp.MustCompile(`(?m)^pluginpool: line 1000: crashfrom: worker 0 \(pid \d+\) died while running this task \(exit status 4\); gave up after 3 attempts \(max_attempts\); last stderr lines:\n  crashing on 1000\n`).FindAllString(stderr, -1); len(got) != 1 {
			t.Errorf("%d items: want one report of line 1000's crash in:\n%s", n, stderr)
		}
		if c := strings.Count(stderr, "pool degraded: 3 workers within 1m0s failed to start or died before completing a task"); c != 1 {
			t.Errorf("%d items: the degraded error appears %d times; want once:\n%s", n, c, stderr)
		}
		if strings.Contains(stderr, "not run: the pool degraded") {
			t.Errorf("%d items: a not-run item was reported on its own:\n%s", n, stderr)
		}
		sizes = append(sizes, len(stderr))
	}
	if sizes[0] > 8<<10 || sizes[1] > 8<<10 {
		t.Errorf("stderr of %v bytes; want a few KB, whatever the input", sizes)
	}
}

// doubled is double's output for 1..n.
func doubled(n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "%d\n", 2*i)
	}
	return b.String()
}

// run -o FILE leaves FILE exactly as it was when a stage degrades, and
// sums up as map does.
func TestRunDegradedLeavesOutput(t *testing.T) {
	const n = 50_000
	dir := crashDir(t, `
[pipelines.p]
stages = ["double", "crashfrom"]
input = "in.txt"
output = "out.txt"
`, map[string]string{"in.txt": testkit.Numbers(1, n), "out.txt": "results of an earlier run\n"})
	stdout, stderr, code := mainIn(t, dir, nil, nil, "run", "p")
	if code != ExitStart || stdout != "" {
		t.Errorf("exit %d, stdout %q; want 3 and nothing", code, stdout)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "out.txt")); err != nil || string(b) != "results of an earlier run\n" {
		t.Errorf("out.txt = %q, %v; want it left as it was", b, err)
	}
	if ents, _ := filepath.Glob(filepath.Join(dir, ".out.txt.tmp-*")); len(ents) > 0 {
		t.Errorf("temporary files left: %v", ents)
	}
	// double doubles first: the crash loop starts at input line 500.
	summary := fmt.Sprintf("pluginpool: %d of %d items were not run, from line 501, because stage 2 (crashfrom) degraded; 1 failed; %s is left as it was\n",
		n-500, n, filepath.Join(dir, "out.txt"))
	if strings.Count(stderr, summary) != 1 {
		t.Errorf("stderr lacks the summary %q:\n%s", summary, stderr)
	}
	if c := strings.Count(stderr, "pool degraded: 3 workers"); c != 1 || len(stderr) > 8<<10 {
		t.Errorf("the degraded error appears %d times in %d bytes of stderr; want once, a few KB:\n%s", c, len(stderr), stderr)
	}
}

// An input that stays open (a pipe from tail -f) does not keep a degraded
// map waiting: once nothing arrives for a second it is let go, and the
// summary says its count is a lower bound.
func TestMapDegradedOpenInput(t *testing.T) {
	dir := crashDir(t, "", map[string]string{})
	pr, pw := io.Pipe()
	defer pw.Close()
	go pw.Write([]byte(testkit.Numbers(1, 5000))) // and never closed
	done := make(chan struct{})
	var stderr string
	var code ExitCode
	go func() {
		defer close(done)
		_, stderr, code = mainIn(t, dir, pr, nil, "map", "crashfrom")
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("map did not return with its input open")
	}
	want := "pluginpool: at least 4000 items were not run, from line 1001, because the pool degraded (the input was not read to its end: input abandoned); 1 failed\n"
	if code != ExitStart || !strings.Contains(stderr, want) {
		t.Errorf("exit %d; want 3 and %q in:\n%s", code, want, stderr)
	}
}
