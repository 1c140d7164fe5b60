package pool_test

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pluginpool/pluginpool/host/pool"
	"github.com/pluginpool/pluginpool/internal/testkit"
)

// Exact crash accounting with real processes (issue 8): the fixtures count
// every run of every item in a file of its own (see ran), and the tests
// compare those counts with what the pool reported.

// totalRuns sums the runs of items 0..n-1.
func totalRuns(t *testing.T, cfg pool.Config, n int) int {
	total := 0
	for i := range n {
		total += runs(t, cfg, i)
	}
	return total
}

// A poison item runs exactly MaxAttempts times, and its *CrashError says
// so; every other item succeeds, and every run the pool did not ask for
// shows up in Stats.Retries.
func TestPoisonRunsExactly(t *testing.T) {
	for _, attempts := range []int{1, 3, 4} {
		t.Run("max_attempts="+strconv.Itoa(attempts), func(t *testing.T) {
			const n, poison = 1001, 500
			cfg := fixture(t, "crash", "POOLTEST_CRASH_ON="+strconv.Itoa(poison))
			cfg.Workers, cfg.MaxAttempts = 2, attempts
			p := start(t, cfg)
			if !p.Info().StartLedger {
				t.Fatal("Info().StartLedger = false for a plugin built with the SDK")
			}
			rs, _ := mapAll(t, p, testkit.Ints(n))
			var ce *pool.CrashError
			if !errors.As(rs[poison].Err, &ce) || ce.Attempts != attempts || ce.Task != pool.TaskRunning || !ce.Idempotent ||
				!strings.Contains(ce.Error(), "after "+strconv.Itoa(attempts)+" attempt") {
				t.Fatalf("poison item: %v (%+v); want a *CrashError, Running, after %d attempts", rs[poison].Err, ce, attempts)
			}
			if got := runs(t, cfg, poison); got != attempts {
				t.Errorf("the poison item ran %d times; want exactly max_attempts = %d", got, attempts)
			}
			lost := 0
			for i, r := range rs {
				if i == poison {
					continue
				}
				got := runs(t, cfg, i)
				var ce *pool.CrashError
				switch {
				case r.Err == nil:
					if string(r.Value) != strconv.Itoa(2*i) {
						t.Errorf("item %d: got %q", i, r.Value)
					}
					// Batch-mates before the poison whose answers died
					// with the first crash run once more; then it runs
					// alone and costs them nothing.
					if got < 1 || got > 2 {
						t.Errorf("item %d ran %d times; want 1, or 2 if its answer died with a crash", i, got)
					}
				case attempts == 1 && errors.As(r.Err, &ce) && ce.Task == pool.TaskFinished && ce.Attempts == 1 && got == 1:
					lost++ // it ran once, its answer died, and it may run only once
				default:
					t.Errorf("item %d (ran %d times): %v", i, got, r.Err)
				}
			}
			st := p.Stats()
			if got := totalRuns(t, cfg, n); got != n+int(st.Retries) {
				t.Errorf("%d runs in all; want one per item plus Stats.Retries = %d", got, n+int(st.Retries))
			}
			if st.Failed != int64(1+lost) || st.Succeeded != int64(n-1-lost) || st.Restarts != int64(attempts) {
				t.Errorf("stats: %+v; want %d failed, %d succeeded, %d restarts", st, 1+lost, n-1-lost, attempts)
			}
		})
	}
}

// A task that ignores its timeout runs once and fails once, with a
// *TimeoutError (Killed); every other item runs exactly once: those that
// finished before it in its batch are answered while it hangs (the SDK
// sends them), those behind it never started and run elsewhere at no cost.
// The same for a plugin that is not idempotent.
func TestTimeoutRunsOnce(t *testing.T) {
	for _, idempotent := range []bool{true, false} {
		t.Run("idempotent="+strconv.FormatBool(idempotent), func(t *testing.T) {
			var env []string
			if !idempotent {
				env = append(env, "POOLTEST_NOTIDEMPOTENT=1")
			}
			cfg := fixture(t, "hang", env...)
			cfg.Workers, cfg.ChunkSize = 2, 4
			cfg.TaskTimeout = 200 * time.Millisecond
			cfg.KillGrace = 300 * time.Millisecond
			p := start(t, cfg)
			in := make([]string, 24)
			for i := range in {
				in[i] = "item" + strconv.Itoa(i)
			}
			in[6] = "hang" // third in the batch of items 4..7
			rs, _ := mapAll(t, p, strs(in...))
			for i, r := range rs {
				var te *pool.TimeoutError
				if i == 6 {
					if !errors.As(r.Err, &te) || !te.Killed {
						t.Errorf("hang: %v; want a *TimeoutError, Killed", r.Err)
					}
				} else if r.Err != nil || string(r.Value) != strconv.Quote(in[i]) {
					t.Errorf("item %d: got %q, %v", i, r.Value, r.Err)
				}
				if got := runs(t, cfg, in[i]); got != 1 {
					t.Errorf("item %d (%s) ran %d times; want once", i, in[i], got)
				}
			}
			if st := p.Stats(); st.Timeouts != 1 || st.Failed != 1 || st.Retries != 0 {
				t.Errorf("stats: %+v; want 1 timeout, 1 failed, no retries", st)
			}
		})
	}
}

// A crash of a plugin that is not idempotent fails the task it was running
// and, at most, the tasks before it in its batch whose answers died with it
// (each saying it ran); every task it had not started runs elsewhere. No
// task runs twice.
func TestCrashNotIdempotentExact(t *testing.T) {
	const n, poison, chunk = 300, 105, 10
	cfg := fixture(t, "notidempotent", "POOLTEST_CRASH_ON="+strconv.Itoa(poison))
	cfg.Workers, cfg.ChunkSize = 2, chunk
	p := start(t, cfg)
	rs, _ := mapAll(t, p, testkit.Ints(n))
	lost := 0
	for i, r := range rs {
		var ce *pool.CrashError
		switch {
		case i == poison:
			if !errors.As(r.Err, &ce) || ce.Task != pool.TaskRunning || ce.Attempts != 1 || ce.Idempotent || ce.Exit != "exit status 7" {
				t.Errorf("poison: %v (%+v); want a *CrashError: Running, 1 attempt, exit status 7", r.Err, ce)
			}
		case r.Err == nil:
			if string(r.Value) != strconv.Itoa(2*i) {
				t.Errorf("item %d: got %q", i, r.Value)
			}
		case errors.As(r.Err, &ce) && ce.Task == pool.TaskFinished && i >= poison/chunk*chunk && i < poison:
			lost++ // ran before the poison; its answer died with the worker
			if !strings.Contains(r.Err.Error(), "the result is lost") {
				t.Errorf("item %d: %v; want the message to say the result is lost", i, r.Err)
			}
		default:
			t.Errorf("item %d: %v; want a value (or, before the poison in its batch, a lost result)", i, r.Err)
		}
		if got := runs(t, cfg, i); got != 1 {
			t.Errorf("item %d ran %d times; want once", i, got)
		}
	}
	if n := counted(t, cfg, "twice"); n != 0 {
		t.Errorf("%d tasks of a plugin that is not idempotent ran twice", n)
	}
	if st := p.Stats(); st.Failed != int64(1+lost) || st.Retries != 0 || st.Restarts != 1 {
		t.Errorf("stats: %+v; want %d failed, no retries, 1 restart", st, 1+lost)
	}
}

// Without the start ledger (a third-party SDK) every item the dead worker
// held counts a run it may have had: they still all succeed (the plugin is
// idempotent), and the runs add up.
func TestCrashWithoutLedger(t *testing.T) {
	const n = 1000
	cfg := fixture(t, "noledger", "POOLTEST_CRASH_ON=500")
	cfg.Workers = 2
	p := start(t, cfg)
	if p.Info().StartLedger {
		t.Fatal("Info().StartLedger = true for a plugin without the ledger")
	}
	rs, err := mapAll(t, p, testkit.Ints(n))
	if err != nil {
		t.Fatal(err)
	}
	testkit.CheckDoubled(t, rs)
	st := p.Stats()
	if got := totalRuns(t, cfg, n); got < n+1 || got > n+int(st.Retries) {
		t.Errorf("%d runs in all; want more than %d, at most %d (items + Stats.Retries)", got, n, n+int(st.Retries))
	}
}

// A line a plugin writes to stderr just before it exits is in the crash
// error, and forwarded like any other stray line.
func TestStderrBeforeExit(t *testing.T) {
	cfg := fixture(t, "exitwhy", "POOLTEST_CRASH_ON=3")
	cfg.Workers, cfg.MaxAttempts = 1, 1
	p := start(t, cfg)
	rs, _ := mapAll(t, p, testkit.Ints(5))
	var ce *pool.CrashError
	if !errors.As(rs[3].Err, &ce) || !slices.Contains(ce.Stderr, "why: item 3 is poison") {
		t.Fatalf("item 3: %v; want a *CrashError quoting the stderr line written before the exit", rs[3].Err)
	}
	if !strings.Contains(ce.Error(), "why: item 3 is poison") {
		t.Errorf("the message does not quote stderr: %v", ce)
	}
	out := cfg.Stderr.(*lines)
	if !strings.Contains(out.String(), "stderr] why: item 3 is poison\n") {
		t.Errorf("the stray line was not forwarded, tagged: %q", out.String())
	}
	if strings.Contains(out.String(), "@level") {
		t.Errorf("log records were forwarded as stray lines: %q", out.String())
	}
}

// A crash loop (a plugin that exits on every task) degrades the pool:
// each of its items is accounted for, as a crash after MaxAttempts runs or
// as not run, and it stops starting processes.
func TestCrashLoopDegrades(t *testing.T) {
	const n = 50
	cfg := fixture(t, "crashall")
	cfg.Workers, cfg.MaxRestarts = 1, 4
	p := start(t, cfg)
	rs, err := mapAll(t, p, testkit.Ints(n))
	if !errors.Is(err, pool.ErrDegraded) || !errors.Is(err, pool.ErrNotRun) {
		t.Fatalf("Map error = %v; want one matching ErrDegraded and ErrNotRun", err)
	}
	crashed, notRun := 0, 0
	for i, r := range rs {
		var ce *pool.CrashError
		var nr *pool.NotRunError
		switch {
		case errors.As(r.Err, &ce):
			crashed++
			if ce.Attempts != runs(t, cfg, i) || ce.Attempts != pool.DefaultMaxAttempts {
				t.Errorf("item %d: Attempts %d, ran %d times; want both %d", i, ce.Attempts, runs(t, cfg, i), pool.DefaultMaxAttempts)
			}
		case errors.As(r.Err, &nr):
			notRun++
			var de *pool.DegradedError
			if !errors.As(r.Err, &de) || len(r.Err.Error()) > 200 {
				t.Errorf("item %d: %q; want a short *NotRunError wrapping the *DegradedError", i, r.Err)
			}
			if got := runs(t, cfg, i); got >= pool.DefaultMaxAttempts {
				t.Errorf("item %d ran %d times and is reported not run", i, got)
			}
		default:
			t.Errorf("item %d: %v; want a crash or not run", i, r.Err)
		}
	}
	st := p.Stats()
	if crashed+notRun != n || st.NotRun != int64(notRun) || st.Failed != int64(crashed) {
		t.Errorf("%d crashed, %d not run; stats %+v", crashed, notRun, st)
	}
	// The first start, then MaxRestarts restarts, each after a worker that
	// completed nothing; the next one degraded the pool.
	if got := counted(t, cfg, "launches"); got != 1+cfg.MaxRestarts {
		t.Errorf("%d processes started; want %d", got, 1+cfg.MaxRestarts)
	}
}

// Workers killed again and again while they make progress do not degrade
// the pool, however often: the job completes.
func TestKilledWhileProgressing(t *testing.T) {
	const n, kills = 3000, 8
	cfg := fixture(t, "slow")
	cfg.Workers, cfg.MaxRestarts, cfg.ChunkSize = 1, 2, 10
	p := start(t, cfg)
	items := make([][]byte, n)
	for i := range items {
		items[i] = []byte("1") // 1 ms each
	}
	done := mapAsync(p, items)
	killed := 0
	for killed < kills {
		// Wait for the current worker to complete 50 tasks of its own.
		pid := livePids(t, p)[0]
		base := p.Stats().Workers[0].Tasks
		waitUntil(t, "the worker to make progress", func() bool {
			w := p.Stats().Workers[0]
			return w.Pid != pid || w.Tasks >= base+50
		})
		if p.Stats().Workers[0].Pid != pid {
			continue
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		killed++
		waitUntil(t, "the worker to be replaced", func() bool { return p.Stats().Workers[0].Pid != pid })
	}
	var m mapped
	bounded(t, "Map", func() { m = <-done })
	if m.err != nil {
		t.Fatalf("Map: %v; want every item done despite %d kills (max_restarts %d)", m.err, kills, cfg.MaxRestarts)
	}
	for i, r := range m.rs {
		if string(r.Value) != "1" {
			t.Fatalf("item %d: %q, %v", i, r.Value, r.Err)
		}
	}
	if st := p.Stats(); st.Restarts < kills {
		t.Errorf("stats: %+v; want at least %d restarts", st, kills)
	}
}
