package pool_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pluginpool/pluginpool/host/pool"
	"github.com/pluginpool/pluginpool/internal/testkit"
)

// A task that ignores its timeout is cancelled, then its worker is killed
// after KillGrace and replaced; the task fails with a *TimeoutError
// (Killed); a task that honours the cancellation fails with a timeout
// without a kill. Batch-mates of both complete.
func TestTimeout(t *testing.T) {
	cfg := fixture(t, "hang")
	cfg.Workers = 2
	cfg.ChunkSize = 4 // batch-mates on both sides of the hanging item
	cfg.TaskTimeout = 200 * time.Millisecond
	cfg.KillGrace = 300 * time.Millisecond
	p := start(t, cfg)
	before := pids(p)

	// 40 items: batches of 4, the hanging item third in its batch, the
	// sleeping one second in its.
	in := make([]string, 40)
	for i := range in {
		in[i] = "item" + strconv.Itoa(i)
	}
	in[6], in[21] = "hang", "sleep"
	rs, err := mapAll(t, p, strs(in...))
	if !errors.Is(err, pool.ErrTimeout) {
		t.Errorf("Map error = %v; want one matching ErrTimeout", err)
	}
	for i, r := range rs {
		var te *pool.TimeoutError
		switch in[i] {
		case "hang":
			// The pid is the killed worker's: replaced by now.
			if !errors.As(r.Err, &te) || !te.Killed || te.Timeout != cfg.TaskTimeout || te.Pid <= 0 || slices.Contains(livePids(t, p), te.Pid) {
				t.Errorf("hang: got %q, %v (%+v); want a *TimeoutError, Killed, naming the replaced worker's pid (now %v)", r.Value, r.Err, te, pids(p))
			}
		case "sleep":
			if !errors.As(r.Err, &te) || te.Killed || !errors.Is(r.Err, pool.ErrTimeout) {
				t.Errorf("sleep: got %q, %v (%+v); want a *TimeoutError, not Killed", r.Value, r.Err, te)
			}
		default:
			if r.Err != nil || string(r.Value) != strconv.Quote(in[i]) {
				t.Errorf("item %d (%s): got %q, %v", i, in[i], r.Value, r.Err)
			}
		}
	}
	after := pids(p)
	replaced := 0
	for i := range before {
		if after[i] != before[i] {
			replaced++
		}
	}
	if replaced == 0 {
		t.Errorf("no worker was replaced: pids %v -> %v", before, after)
	}
	st := p.Stats()
	if st.Timeouts != 2 || st.Failed != 2 {
		t.Errorf("stats: %+v; want 2 timeouts, 2 failed", st)
	}

	// Only the hanging task costs a kill: a Map of well-behaved items
	// keeps the workers it has.
	now := livePids(t, p)
	rs, err = mapAll(t, p, strs("x", "y", "z", "sleep"))
	if rs[0].Err != nil || rs[2].Err != nil || !errors.Is(rs[3].Err, pool.ErrTimeout) {
		t.Errorf("second Map: %+v, %v", rs, err)
	}
	if !slices.Equal(pids(p), now) {
		t.Errorf("a task that honours its timeout replaced a worker: pids %v -> %v", now, pids(p))
	}
}

// Init fails on every start after the first: after the worker is killed
// the pool restarts it MaxRestarts times, then degrades: calls fail fast
// with a *DegradedError carrying the init error, and it stops respawning.
func TestDegraded(t *testing.T) {
	cfg := fixture(t, "initfaillater")
	cfg.Workers = 1
	cfg.MaxRestarts = 3
	p := start(t, cfg)
	if n := counted(t, cfg, "starts"); n != 1 {
		t.Fatalf("%d starts before the kill; want 1", n)
	}
	if err := syscall.Kill(pids(p)[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}

	// Map either waits for the restarts to run out or finds the pool
	// already degraded; either way it fails, and does not hang.
	rs, err := mapAll(t, p, testkit.Ints(10))
	var de *pool.DegradedError
	if !errors.As(err, &de) || !errors.Is(err, pool.ErrDegraded) {
		t.Fatalf("Map on a degrading pool: %v; want a *DegradedError", err)
	}
	for i, r := range rs {
		if !errors.Is(r.Err, pool.ErrDegraded) {
			t.Errorf("item %d: %v; want ErrDegraded", i, r.Err)
		}
	}
	if de.Restarts != cfg.MaxRestarts+1 || len(de.Causes) == 0 {
		t.Errorf("DegradedError = %+v; want %d restarts and causes", de, cfg.MaxRestarts+1)
	}
	initCauses := 0
	for _, c := range de.Causes {
		if errors.Is(c, pool.ErrInit) && strings.Contains(c.Error(), "cannot initialise again") {
			initCauses++
		}
	}
	if initCauses == 0 || !strings.Contains(de.Error(), "cannot initialise again") {
		t.Errorf("DegradedError causes do not name the init error: %v", de)
	}

	// Fails fast now, every kind of call.
	if _, err := p.Apply(context.Background(), []byte("1")); !errors.As(err, &de) {
		t.Errorf("Apply on a degraded pool: %v", err)
	}
	for _, r := range p.Imap(context.Background(), sliceSeq(testkit.Ints(3))) {
		if !errors.Is(r.Err, pool.ErrDegraded) {
			t.Errorf("Imap on a degraded pool: %v", r.Err)
		}
	}

	// The restarts stopped at the limit: the first start, then at most
	// MaxRestarts more (the crash counts as one restart, each failed Init
	// as another); a little slack; and no more later.
	starts := counted(t, cfg, "starts")
	if starts < 2 || starts > cfg.Workers+cfg.MaxRestarts+1 {
		t.Errorf("%d process starts; want between 2 and workers+MaxRestarts+1 = %d", starts, cfg.Workers+cfg.MaxRestarts+1)
	}
	time.Sleep(300 * time.Millisecond)
	if n := counted(t, cfg, "starts"); n != starts {
		t.Errorf("the pool went on starting processes after it degraded: %d, then %d", starts, n)
	}
	var cerr error
	bounded(t, "Close", func() { cerr = p.Close() })
	if !errors.Is(cerr, pool.ErrDegraded) {
		t.Errorf("Close on a degraded pool = %v; want the degraded error", cerr)
	}
}

// MaxTasksPerWorker replaces each worker after that many tasks, between
// batches, losing nothing; recycling is not a restart.
func TestRecycle(t *testing.T) {
	cfg := fixture(t, "pid")
	cfg.Workers = 2
	cfg.ChunkSize = 7
	cfg.MaxTasksPerWorker = 100
	p := start(t, cfg)
	first := pids(p)
	rs, err := mapAll(t, p, testkit.Ints(1000))
	if err != nil {
		t.Fatal(err)
	}
	perPid := map[string]int{}
	for i, r := range rs {
		v, pid, _ := strings.Cut(strings.Trim(string(r.Value), `"`), ":")
		if v != strconv.Itoa(2*i) {
			t.Fatalf("item %d: got %q", i, r.Value)
		}
		perPid[pid]++
	}
	for pid, n := range perPid {
		if n > cfg.MaxTasksPerWorker {
			t.Errorf("pid %s ran %d tasks; MaxTasksPerWorker is %d", pid, n, cfg.MaxTasksPerWorker)
		}
	}
	if len(perPid) < 1000/cfg.MaxTasksPerWorker {
		t.Errorf("%d processes ran 1000 tasks", len(perPid))
	}
	now := pids(p)
	for i := range first {
		if now[i] == first[i] {
			t.Errorf("slot %d kept pid %d", i, first[i])
		}
	}
	if st := p.Stats(); st.Restarts != 0 || st.Retries != 0 {
		t.Errorf("stats: %+v; want no restarts and no retries", st)
	}
}

// Items up to 64 MiB go through; one over MaxItemBytes fails alone.
func TestLargeItems(t *testing.T) {
	p := start(t, fixture(t, "size"))
	big := make([]byte, pool.DefaultMaxItemBytes)
	for i := range big {
		big[i] = 'x'
	}
	tooBig := make([]byte, pool.DefaultMaxItemBytes+1)
	items := [][]byte{[]byte("abc"), big, tooBig, []byte("de")}
	rs, err := mapAll(t, p, items)
	if !errors.Is(err, pool.ErrTooLarge) {
		t.Errorf("Map error = %v; want ErrTooLarge", err)
	}
	for i, want := range []string{"3", strconv.Itoa(len(big)), "", "2"} {
		if i == 2 {
			var tl *pool.TooLargeError
			if !errors.As(rs[i].Err, &tl) || tl.Size != len(tooBig) || tl.Limit != pool.DefaultMaxItemBytes {
				t.Errorf("item 2: %v; want a *TooLargeError of %d over %d", rs[i].Err, len(tooBig), pool.DefaultMaxItemBytes)
			}
			continue
		}
		if rs[i].Err != nil || string(rs[i].Value) != want {
			t.Errorf("item %d: got %q, %v; want %s", i, rs[i].Value, rs[i].Err, want)
		}
	}
	// Imap too.
	for i, r := range p.Imap(context.Background(), sliceSeq(items)) {
		if (i == 2) != errors.Is(r.Err, pool.ErrTooLarge) {
			t.Errorf("Imap item %d: %v", i, r.Err)
		}
	}
}

func TestTaskIDs(t *testing.T) {
	p := start(t, fixture(t, "ids"))
	seen := map[string]bool{}
	for range 2 {
		rs, err := mapAll(t, p, testkit.Ints(2000))
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range rs {
			id, attempt, _ := strings.Cut(strings.Trim(string(r.Value), `"`), ":")
			if id == "0" || attempt != "1" {
				t.Fatalf("item %d: id:attempt = %s; want a non-zero id, attempt 1", i, r.Value)
			}
			if seen[id] {
				t.Fatalf("item %d: id %s used twice", i, id)
			}
			seen[id] = true
		}
	}
}

func TestPluginConfig(t *testing.T) {
	cfg := fixture(t, "config")
	cfg.PluginConfig = []byte(`{"greeting": "hello", "n": 3}`)
	p := start(t, cfg)
	rs, err := mapAll(t, p, strs("greeting", "n", "missing"))
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprintf("%s %s %s", rs[0].Value, rs[1].Value, rs[2].Value)
	if got != `"hello" 3 null` {
		t.Errorf("config values: %s", got)
	}
	// Start copied the config: changing it does not reach the plugin.
	cfg.PluginConfig[2] = 'X'
	if string(p.Config().PluginConfig) != `{"greeting": "hello", "n": 3}` {
		t.Errorf("Config() = %s", p.Config().PluginConfig)
	}
}
