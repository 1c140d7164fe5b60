package cluster_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pluginpool/pluginpool/host/cluster"
	"github.com/pluginpool/pluginpool/host/pool"
	"github.com/pluginpool/pluginpool/internal/testkit"
)

func doubleConfig(workers int) pool.Config {
	return pool.Config{Path: filepath.Join(binDir, "double"), Name: "double", Workers: workers}
}

func seq(items [][]byte) func(func([]byte) bool) {
	return func(yield func([]byte) bool) {
		for _, it := range items {
			if !yield(it) {
				return
			}
		}
	}
}

func TestMapImapApply(t *testing.T) {
	s := startServer(t)
	startWorker(t, s.ClientURL(), doubleConfig(2))
	e := startExecutor(t, cluster.Config{NATS: cluster.NATS{URL: s.ClientURL()}, Plugin: "double"})
	ctx := context.Background()

	rs, err := e.Map(ctx, testkit.Ints(20000))
	if err != nil {
		t.Fatal(err)
	}
	testkit.CheckDoubled(t, rs)

	var got []pool.Result
	for i, r := range e.Imap(ctx, seq(testkit.Ints(5000))) {
		if i != len(got) {
			t.Fatalf("Imap yielded index %d, want %d: not in input order", i, len(got))
		}
		got = append(got, r)
	}
	testkit.CheckDoubled(t, got)

	un := make([]pool.Result, 3000)
	seen := 0
	for i, r := range e.ImapUnordered(ctx, seq(testkit.Ints(3000))) {
		un[i] = r
		seen++
	}
	if seen != 3000 {
		t.Fatalf("ImapUnordered yielded %d results for 3000 items", seen)
	}
	testkit.CheckDoubled(t, un)

	// Runs are consecutive, in order, each at most 256 long.
	var runs []pool.Result
	for i, rs := range e.ImapBatches(ctx, seq(testkit.Ints(4000))) {
		if i != len(runs) || len(rs) == 0 || len(rs) > 256 {
			t.Fatalf("ImapBatches yielded a run of %d at %d after %d results", len(rs), i, len(runs))
		}
		runs = append(runs, rs...)
	}
	if len(runs) != 4000 {
		t.Fatalf("ImapBatches yielded %d results for 4000 items", len(runs))
	}
	testkit.CheckDoubled(t, runs)

	r, err := e.Apply(ctx, []byte("21"))
	if err != nil || string(r.Value) != "42" {
		t.Fatalf("Apply(21) = %q, %v; want 42", r.Value, err)
	}
	st := e.Stats()
	if st.Succeeded != 32001 || st.Failed != 0 || len(st.Workers) != 1 {
		t.Fatalf("stats: %+v", st)
	}
}

// Printed lines travel with their item; a task error fails its item only;
// an item larger than one NATS message fails alone, naming max_payload.
func TestOutputErrorsAndSizes(t *testing.T) {
	s := startServer(t) // max_payload 1 MiB
	startWorker(t, s.ClientURL(), fixture(t, "echo", "echo"))
	e := startExecutor(t, cluster.Config{NATS: cluster.NATS{URL: s.ClientURL()}, Plugin: "echo", MaxItemBytes: 4 << 20})
	big := []byte(`"` + strings.Repeat("x", 2<<20) + `"`)
	huge := []byte(`"` + strings.Repeat("y", 5<<20) + `"`)
	mid := []byte(`"` + strings.Repeat("z", 600<<10) + `"`)
	items := [][]byte{[]byte("1"), []byte(`"fail"`), big, mid, huge, mid, []byte("7")}
	rs, err := e.Map(context.Background(), items)
	if err == nil {
		t.Fatal("Map: no error, want 3 failed items")
	}
	for _, i := range []int{0, 3, 5, 6} {
		if rs[i].Err != nil || string(rs[i].Value) != string(items[i]) {
			t.Fatalf("item %d: %v", i, rs[i].Err)
		}
		if want := "got " + strconv.Itoa(len(items[i])) + " bytes"; !slices.Equal(rs[i].Output, []string{want}) {
			t.Fatalf("item %d printed %q, want %q", i, rs[i].Output, want)
		}
	}
	var te *pool.TaskError
	if !errors.As(rs[1].Err, &te) || te.Message != "asked to fail" || !slices.Equal(rs[1].Output, []string{"got 6 bytes"}) {
		t.Fatalf("item 1: %v, output %q; want the task's error and its printed line", rs[1].Err, rs[1].Output)
	}
	var pe *cluster.PayloadError
	if !errors.As(rs[2].Err, &pe) || !errors.Is(rs[2].Err, pool.ErrTooLarge) || !strings.Contains(rs[2].Err.Error(), "max_payload") {
		t.Fatalf("item 2 (2 MiB): %v; want a PayloadError naming max_payload", rs[2].Err)
	}
	var tl *pool.TooLargeError
	if !errors.As(rs[4].Err, &tl) || tl.Limit != 4<<20 {
		t.Fatalf("item 4 (5 MiB): %v; want a TooLargeError over max_item_bytes", rs[4].Err)
	}
}

// Cancelling a call fails its unfinished items with ctx's error, takes its
// batches off the stream and stops its work on the workers.
func TestCancelStopsWorkers(t *testing.T) {
	s := startServer(t)
	w := startWorker(t, s.ClientURL(), fixture(t, "sleepy", "sleepy", "CLUSTERTEST_SLEEP=50ms"))
	e := startExecutor(t, cluster.Config{NATS: cluster.NATS{URL: s.ClientURL()}, Plugin: "sleepy"})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(500*time.Millisecond, cancel)
	began := time.Now()
	rs, err := e.Map(ctx, testkit.Ints(2000))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Map: %v, want context.Canceled", err)
	}
	if d := time.Since(began); d > 5*time.Second {
		t.Fatalf("Map took %s to return after its cancellation", d)
	}
	done := 0
	for _, r := range rs {
		if r.Err == nil {
			done++
		} else if !errors.Is(r.Err, context.Canceled) {
			t.Fatalf("unfinished item: %v, want context.Canceled", r.Err)
		}
	}
	if done == 0 || done == len(rs) {
		t.Fatalf("%d of %d items done at cancel", done, len(rs))
	}
	idle(t, s.ClientURL(), w.ID())
}

// idle waits until worker id runs nothing.
func idle(t *testing.T, url, id string) {
	t.Helper()
	testkit.Eventually(t, 10*time.Second, "worker "+id+" still running batches", func() bool {
		ws, err := cluster.ListWorkers(context.Background(), cluster.NATS{URL: url})
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range ws {
			if w.ID == id {
				for _, p := range w.Plugins {
					if p.Running > 0 {
						return false
					}
				}
				return w.Jobs == 0
			}
		}
		return false
	})
}

// Stopping an Imap loop early stops the job on the cluster.
func TestImapBreak(t *testing.T) {
	s := startServer(t)
	w := startWorker(t, s.ClientURL(), fixture(t, "sleepy", "sleepy", "CLUSTERTEST_SLEEP=5ms"))
	e := startExecutor(t, cluster.Config{NATS: cluster.NATS{URL: s.ClientURL()}, Plugin: "sleepy"})
	n := 0
	for i, r := range e.Imap(context.Background(), seq(testkit.Ints(100000))) {
		if r.Err != nil || string(r.Value) != strconv.Itoa(2*i) {
			t.Fatalf("item %d: %q, %v", i, r.Value, r.Err)
		}
		if n++; n == 100 {
			break
		}
	}
	idle(t, s.ClientURL(), w.ID())
}

// A worker whose plugin differs from the pins serves nothing; with no
// other worker Start fails naming it and why.
func TestPinnedVersionAndDigest(t *testing.T) {
	s := startServer(t)
	url := s.ClientURL()
	startWorker(t, url, fixture(t, "double", "v2"))
	ctx := context.Background()
	_, err := cluster.Start(ctx, cluster.Config{NATS: cluster.NATS{URL: url}, Plugin: "double", Version: "1.0.0", StartTimeout: time.Second, Logger: testLogger(t)})
	var nw *cluster.NoWorkersError
	if !errors.As(err, &nw) || !errors.Is(err, pool.ErrStart) || len(nw.Refused) != 1 || !strings.Contains(nw.Refused[0].Reason, `version "2.0.0"`) {
		t.Fatalf("Start pinned to 1.0.0 with only a 2.0.0 worker: %v; want a NoWorkersError naming it", err)
	}
	sum := sha(t, filepath.Join(binDir, "double"))
	real := startWorker(t, url, doubleConfig(1))
	e := startExecutor(t, cluster.Config{NATS: cluster.NATS{URL: url}, Plugin: "double", SHA256: sum})
	if r := e.Refused(); len(r) != 1 || !strings.Contains(r[0].Reason, "sha256") {
		t.Fatalf("Refused() = %v; want the fixture, for its sha256", r)
	}
	rs, err := e.Map(ctx, testkit.Ints(2000))
	if err != nil {
		t.Fatal(err)
	}
	testkit.CheckDoubled(t, rs)
	if ids := e.WorkerIDs(); !slices.Equal(ids, []string{real.ID()}) {
		t.Fatalf("answered by %v; want only %s", ids, real.ID())
	}
}

func sha(t *testing.T, path string) string {
	t.Helper()
	sum, err := pool.FileSHA256(path)
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

// A plugin that is not idempotent never runs a batch twice: the batches
// of a worker terminated mid-run fail as possibly run, the rest complete.
func TestNotIdempotentNeverRunsTwice(t *testing.T) {
	s := startServer(t)
	url := s.ClientURL()
	cfg := fixture(t, "once", "once", "CLUSTERTEST_SLEEP=20ms")
	a := startWorker(t, url, cfg)
	e := startExecutor(t, cluster.Config{NATS: cluster.NATS{URL: url}, Plugin: "once", AckWait: time.Second, ChunkSize: 5})
	second := make(chan error, 1)
	go func() {
		time.Sleep(300 * time.Millisecond)
		b, err := cluster.StartWorker(context.Background(), cluster.WorkerConfig{NATS: cluster.NATS{URL: url}, Plugins: []pool.Config{cfg}, Logger: testLogger(t)})
		a.Terminate()
		if err == nil {
			t.Cleanup(func() { b.Terminate() })
		}
		second <- err
	}()
	rs, _ := e.Map(context.Background(), testkit.Ints(400))
	if err := <-second; err != nil {
		t.Fatal(err)
	}
	lost := 0
	for i, r := range rs {
		switch {
		case r.Err == nil:
			if string(r.Value) != strconv.Itoa(2*i) {
				t.Fatalf("item %d: %q", i, r.Value)
			}
		case errors.Is(r.Err, cluster.ErrLost) && errors.Is(r.Err, pool.ErrCrashed) && strings.Contains(r.Err.Error(), "may have run"):
			lost++
		default:
			t.Fatalf("item %d: %v; want a value or a LostError", i, r.Err)
		}
	}
	if lost == 0 || lost > 4*5 {
		t.Fatalf("%d items lost; want those of the batches the terminated worker held (1..%d)", lost, 4*5)
	}
}

// A worker's crash error reaches the host as the pool's own error type,
// naming the worker; the other items complete.
func TestCrashErrorTravels(t *testing.T) {
	s := startServer(t)
	w := startWorker(t, s.ClientURL(), fixture(t, "crashy", "crashy"))
	e := startExecutor(t, cluster.Config{NATS: cluster.NATS{URL: s.ClientURL()}, Plugin: "crashy"})
	rs, _ := e.Map(context.Background(), testkit.Ints(20))
	for i, r := range rs {
		if i == 7 {
			var ce *pool.CrashError
			var re *cluster.RemoteError
			if !errors.As(r.Err, &ce) || !errors.As(r.Err, &re) || re.Worker != w.ID() || !strings.Contains(r.Err.Error(), "exit status 3") {
				t.Fatalf("item 7: %v; want the worker's CrashError, naming it", r.Err)
			}
			continue
		}
		if r.Err != nil || string(r.Value) != strconv.Itoa(2*i) {
			t.Fatalf("item %d: %q, %v", i, r.Value, r.Err)
		}
	}
}

// A slot whose pool degrades (a poison item, few restarts allowed) gives
// its idempotent batch back; when every delivery ends that way the items
// fail as lost after max_attempts deliveries instead of waiting forever.
func TestDegradedSlotsGiveUp(t *testing.T) {
	s := startServer(t)
	cfg := fixture(t, "crashy", "crashy")
	// Two restarts within the window degrade the slot: each took ~300 ms
	// on a loaded machine under -race, so a 500 ms window was sometimes
	// missed, the pool went on restarting, and the batch was answered.
	cfg.MaxRestarts, cfg.RestartWindow = 1, 3*time.Second
	startWorker(t, s.ClientURL(), cfg)
	e := startExecutor(t, cluster.Config{NATS: cluster.NATS{URL: s.ClientURL()}, Plugin: "crashy", ChunkSize: 10, MaxAttempts: 2})
	rs, _ := e.Map(context.Background(), testkit.Ints(10))
	for i, r := range rs {
		var le *cluster.LostError
		if !errors.As(r.Err, &le) || le.Deliveries != 3 || !strings.Contains(r.Err.Error(), "max_attempts") {
			t.Fatalf("item %d: %v; want it lost at the third delivery", i, r.Err)
		}
	}
}

// A slot that degrades under a batch of a plugin that is not idempotent
// still answers every item of it: the host's call ends, each item with its
// value or the pool's error, none left waiting for the deadline.
func TestDegradedUnderABatchNotIdempotent(t *testing.T) {
	s := startServer(t)
	cfg := fixture(t, "fragile", "fragile")
	cfg.Workers, cfg.MaxRestarts, cfg.RestartWindow = 1, 1, time.Minute
	// Batches of 100 in the worker's pool: the one holding item 1000 starts
	// with it, so every item before it was answered before it ran. (With
	// the adaptive size a batch could span item 1000, and the items before
	// it in that batch, done but not yet answered, crash with it.)
	cfg.ChunkSize = 100
	startWorker(t, s.ClientURL(), cfg)
	e := startExecutor(t, cluster.Config{NATS: cluster.NATS{URL: s.ClientURL()}, Plugin: "fragile", ChunkSize: 20000})
	items := testkit.Ints(20000)
	// The first crash follows completed tasks; the next ones, each on a
	// fresh process's first item, look like a crash loop.
	for i := 1000; i < 1010; i++ {
		items[i] = []byte("7")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rs, _ := e.Map(ctx, items)
	ok, crashed, degraded := 0, 0, 0
	for i, r := range rs {
		var ce *pool.CrashError
		switch {
		case errors.Is(r.Err, context.DeadlineExceeded):
			t.Fatalf("item %d: %v; the worker never answered it", i, r.Err)
		case errors.As(r.Err, &ce):
			crashed++
		case errors.Is(r.Err, pool.ErrDegraded):
			degraded++
		case r.Err != nil:
			t.Fatalf("item %d: %v; want its value, a crash or the slot's degraded error", i, r.Err)
		case string(r.Value) != strconv.Itoa(2*i):
			t.Fatalf("item %d: %q", i, r.Value)
		default:
			ok++
		}
	}
	if ok < 1000 || crashed == 0 || degraded == 0 {
		t.Fatalf("%d doubled, %d crashed, %d not run; want the first 1000 doubled, then crashes, then the slot degraded", ok, crashed, degraded)
	}
	t.Logf("%d doubled, %d crashed, %d not run", ok, crashed, degraded)
}
