package pool_test

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pluginpool/pluginpool/internal/testkit"
)

// Lines a task prints through the SDK travel with its result, in order;
// stray writes to the plugin's own stdout and stderr reach Config.Stderr as
// whole lines tagged with the worker.
func TestOutput(t *testing.T) {
	cfg := fixture(t, "print")
	cfg.Workers = 4
	stray := &lines{}
	cfg.Stderr = stray
	p := start(t, cfg)

	items := append(testkit.Ints(41)[1:], []byte("-1"))
	rs, err := mapAll(t, p, items)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rs {
		n, _ := strconv.Atoi(string(items[i]))
		want := []string{"Number: " + strconv.Itoa(n)}
		if n%10 == 0 {
			want = append(want, "line one", "line two")
		}
		if !slices.Equal(r.Output, want) {
			t.Errorf("item %d: Output = %q; want %q", i, r.Output, want)
		}
		if r.Value != nil {
			t.Errorf("item %d: a Sink task has value %q", i, r.Value)
		}
	}

	// Forwarding is asynchronous: wait for both stray lines.
	tag := regexp.MustCompile(`^\[print\[(\d)\] pid (\d+) (stdout|stderr)\] (.*)\n$`)
	var got map[string]string // stream -> line
	deadline := time.Now().Add(hangBound)
	for len(got) < 2 && time.Now().Before(deadline) {
		got = map[string]string{}
		for _, w := range stray.Writes() {
			m := tag.FindStringSubmatch(w)
			if m == nil {
				t.Fatalf("Stderr got %q: not one whole tagged line", w)
			}
			if !slices.Contains(pids(p), atoi(m[2])) {
				t.Errorf("line %q is tagged with pid %s; workers are %v", w, m[2], pids(p))
			}
			got[m[3]] = m[4]
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got["stdout"] != "stray stdout" || got["stderr"] != "stray stderr" {
		t.Errorf("stray output forwarded: %q; want both lines, each on its stream", stray.String())
	}
	if strings.Contains(stray.String(), "Number:") {
		t.Errorf("task output leaked to Stderr: %q", stray.String())
	}
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}
