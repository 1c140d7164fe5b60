package pool_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pluginpool/pluginpool/host/pool"
)

// A worker that dies under an idempotent plugin's task: the task is re-run
// on a live worker and succeeds; nothing is lost; the restart is counted.
func TestCrashRetried(t *testing.T) {
	cfg := fixture(t, "crashonce", "POOLTEST_CRASH_ON=500")
	p := start(t, cfg)
	rs, err := mapAll(t, p, ints(1000))
	if err != nil {
		t.Fatal(err)
	}
	checkDoubled(t, rs)
	st := p.Stats()
	if st.Restarts != 1 || st.Retries < 1 || st.Succeeded != 1000 || st.Failed != 0 {
		t.Errorf("stats: %+v; want 1 restart, >= 1 retry, 1000 succeeded", st)
	}
}

// A plugin that is not idempotent: no task runs twice. The unanswered
// items of the batches in flight on the worker that died may have run
// (finished unreported, or their answers lost with the process), so they
// fail with a *CrashError; every other item still succeeds.
func TestCrashNotIdempotent(t *testing.T) {
	const poison, chunk = 105, 10
	cfg := fixture(t, "notidempotent", "POOLTEST_CRASH_ON="+strconv.Itoa(poison))
	cfg.Workers, cfg.ChunkSize = 2, chunk
	p := start(t, cfg)
	rs, err := mapAll(t, p, ints(200))
	if !errors.Is(err, pool.ErrCrashed) {
		t.Errorf("Map error = %v; want one matching ErrCrashed", err)
	}
	var pc *pool.CrashError
	if !errors.As(rs[poison].Err, &pc) || pc.Attempts != 1 || pc.Exit != "exit status 7" || pc.Pid == 0 ||
		!strings.Contains(pc.Error(), "not retried") {
		t.Fatalf("poison item: %v (%+v); want a *CrashError: 1 attempt, exit status 7, a pid, not retried", rs[poison].Err, pc)
	}
	failed := 0
	for i, r := range rs {
		var ce *pool.CrashError
		switch {
		case r.Err == nil:
			if string(r.Value) != strconv.Itoa(2*i) {
				t.Errorf("item %d: got %q", i, r.Value)
			}
			if i > poison && i < poison/chunk*chunk+chunk {
				t.Errorf("item %d, behind the poison in its batch, succeeded", i)
			}
		case errors.As(r.Err, &ce) && ce.Pid == pc.Pid && ce.Attempts == 1:
			failed++ // in flight on the worker that died
		default:
			t.Errorf("item %d: %v; want a value or the poison's crash", i, r.Err)
		}
	}
	if failed > pool.DefaultInFlight*chunk {
		t.Errorf("%d items failed; at most the %d batches in flight on one worker may", failed, pool.DefaultInFlight)
	}
	if n := counted(t, cfg, "twice"); n != 0 {
		t.Errorf("%d tasks of a plugin that is not idempotent ran twice", n)
	}
	if st := p.Stats(); st.Restarts != 1 {
		t.Errorf("stats: %+v; want 1 restart", st)
	}
	if p.Info().Idempotent {
		t.Error("Info().Idempotent = true for the notidempotent fixture")
	}
}

// One poison item among 1,000 that kills its worker every time: the other
// 999 succeed; the poison item fails alone after MaxAttempts with a
// *CrashError naming pid, exit status, attempts and the stderr tail.
func TestPoisonItem(t *testing.T) {
	cfg := fixture(t, "crash", "POOLTEST_CRASH_ON=500")
	cfg.Workers = 2
	p := start(t, cfg)
	first := pids(p)
	rs, err := mapAll(t, p, ints(1000))
	if !errors.Is(err, pool.ErrCrashed) || !strings.Contains(err.Error(), "1 of 1000 items failed") {
		t.Errorf("Map error = %v; want 1 of 1000 failed, matching ErrCrashed", err)
	}
	for i, r := range rs {
		if i != 500 && (r.Err != nil || string(r.Value) != strconv.Itoa(2*i)) {
			t.Errorf("item %d: got %q, %v", i, r.Value, r.Err)
		}
	}
	var ce *pool.CrashError
	if !errors.As(rs[500].Err, &ce) {
		t.Fatalf("poison item: err = %v; want a *CrashError", rs[500].Err)
	}
	if ce.Attempts != pool.DefaultMaxAttempts {
		t.Errorf("poison item: Attempts = %d; want MaxAttempts = %d", ce.Attempts, pool.DefaultMaxAttempts)
	}
	if ce.Pid <= 0 || slices.Contains(pids(p), ce.Pid) {
		t.Errorf("poison item: Pid = %d; want the dead worker's (first pids %v, now %v)", ce.Pid, first, pids(p))
	}
	if ce.Exit != "exit status 2" { // Go's exit status for an unrecovered panic
		t.Errorf("poison item: Exit = %q; want exit status 2", ce.Exit)
	}
	if !slices.Contains(ce.Stderr, "panic: poison item 500") {
		t.Errorf("poison item: stderr tail %q lacks the panic line", ce.Stderr)
	}
	msg := ce.Error()
	for _, want := range []string{"pid " + strconv.Itoa(ce.Pid), "exit status 2", "after 3 attempts", "panic: poison item 500"} {
		if !strings.Contains(msg, want) {
			t.Errorf("poison item: message %q lacks %q", msg, want)
		}
	}
	if st := p.Stats(); st.Restarts < int64(pool.DefaultMaxAttempts) || st.Restarts > pool.DefaultMaxRestarts {
		t.Errorf("stats: %+v; want between MaxAttempts and MaxRestarts restarts", st)
	}
	// Healed: the pool serves on.
	rs, err = mapAll(t, p, ints(100))
	if err != nil {
		t.Fatal(err)
	}
	checkDoubled(t, rs)
}

// Chaos: items stream through a pure plugin while another goroutine
// SIGKILLs a random worker every ~50 ms. Every result is right, in order,
// exactly once; workers were replaced.
//
// Size: the 200,000 items, in race builds too: under -race on two
// cores a run took 1-8 s (15-130 kills), so there is no need to shrink it.
// -short cuts it to 20,000.
//
// MaxAttempts is raised: a task in flight during two kills runs alone from
// then on, and a kill while it runs alone costs it an attempt, as it
// should. With a kill every 50 ms and thousands of such tasks, one of them
// is sometimes killed three times over (seen about once in 15 runs) and
// rightly fails with the default 3; this test is about nothing being lost,
// duplicated or reordered, not about the attempt budget (TestPoisonItem).
func TestChaos(t *testing.T) {
	n := 200_000
	if testing.Short() {
		n = 20_000
	}
	cfg := fixture(t, "double")
	cfg.Workers = 2
	cfg.MaxRestarts = 1 << 20 // chaos is expected here: never degrade
	cfg.MaxAttempts = 50
	p := start(t, cfg)

	var kills atomic.Int64
	stop, killed := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(killed)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			var live []int
			for _, pid := range pids(p) {
				if pid != 0 {
					live = append(live, pid)
				}
			}
			if len(live) == 0 {
				continue
			}
			if syscall.Kill(live[rand.IntN(len(live))], syscall.SIGKILL) == nil {
				kills.Add(1)
			}
		}
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 5*hangBound)
	defer cancel()
	var in counter
	next := 0
	for i, r := range p.Imap(ctx, in.seq(n)) {
		if i != next {
			t.Fatalf("got index %d, want %d: out of order or duplicated", i, next)
		}
		if r.Err != nil || string(r.Value) != strconv.Itoa(2*i) {
			t.Fatalf("item %d: got %q, %v", i, r.Value, r.Err)
		}
		next++
	}
	close(stop)
	<-killed
	if ctx.Err() != nil {
		t.Fatalf("chaos run did not finish within %s", 5*hangBound)
	}
	if next != n {
		t.Fatalf("got %d results for %d items", next, n)
	}
	st := p.Stats()
	t.Logf("%d items, %d kills, stats %+v", n, kills.Load(), st)
	if kills.Load() == 0 || st.Restarts == 0 {
		t.Errorf("no worker was replaced: %d kills, %d restarts", kills.Load(), st.Restarts)
	}
}
