package pool

import (
	"fmt"
	"slices"
	"testing"
)

// The crash policy (crash.go) in memory: which held items run again, with
// or without a run counted, alone or not, and which fail, and how.
func TestSettle(t *testing.T) {
	// Five items held in send order, ids 11..15, none run before.
	five := func() []held {
		return []held{{id: 11}, {id: 12}, {id: 13}, {id: 14}, {id: 15}}
	}
	running := func(id uint64) uint64 { return id<<1 | 1 }
	finished := func(id uint64) uint64 { return id << 1 }
	// Fates read as strings, one per item: "free" runs again at no cost,
	// "again/N" runs again with N runs counted ("alone/N" quarantined),
	// "crash/N" and "lost/N" fail with a *CrashError (Running, Finished)
	// after N runs, "maybe/N" with one that says it may have run,
	// "timeout/N" with a *TimeoutError.
	cases := []struct {
		name  string
		d     death
		items []held
		want  []string
	}{
		{
			name:  "idempotent crash under the third item",
			d:     death{cause: endCrashed, ledger: true, word: running(13), idempotent: true, maxAttempts: 3},
			items: five(),
			want:  []string{"again/1", "again/1", "alone/1", "free", "free"},
		},
		{
			name:  "not idempotent: only what ran fails; what never started runs again",
			d:     death{cause: endCrashed, ledger: true, word: running(13), maxAttempts: 3},
			items: five(),
			want:  []string{"lost/1", "lost/1", "crash/1", "free", "free"},
		},
		{
			name:  "crash between tasks: the last one finished, its answer lost",
			d:     death{cause: endCrashed, ledger: true, word: finished(12), maxAttempts: 3},
			items: five(),
			want:  []string{"lost/1", "lost/1", "free", "free", "free"},
		},
		{
			name:  "the last task started was answered: nothing held started",
			d:     death{cause: endCrashed, ledger: true, word: running(9), maxAttempts: 3},
			items: five(),
			want:  []string{"free", "free", "free", "free", "free"},
		},
		{
			name:  "no task ever started",
			d:     death{cause: endCrashed, ledger: true, word: 0, maxAttempts: 3},
			items: five(),
			want:  []string{"free", "free", "free", "free", "free"},
		},
		{
			name:  "a poison item on its third run fails with the true count",
			d:     death{cause: endCrashed, ledger: true, word: running(13), idempotent: true, maxAttempts: 3},
			items: []held{{id: 13, runs: 2, alone: true}},
			want:  []string{"crash/3"},
		},
		{
			name:  "runs asked for with sdk.Retry count too",
			d:     death{cause: endCrashed, ledger: true, word: running(12), idempotent: true, maxAttempts: 2},
			items: []held{{id: 11, runs: 1}, {id: 12, runs: 1}, {id: 13, runs: 1}},
			want:  []string{"lost/2", "crash/2", "free"},
		},
		{
			name:  "max_attempts 1: nothing that ran runs again",
			d:     death{cause: endCrashed, ledger: true, word: running(12), idempotent: true, maxAttempts: 1},
			items: five(),
			want:  []string{"lost/1", "crash/1", "free", "free", "free"},
		},
		{
			name:  "a quarantined item that never started stays alone",
			d:     death{cause: endCrashed, ledger: true, word: 0, idempotent: true, maxAttempts: 3},
			items: []held{{id: 13, runs: 1, alone: true}},
			want:  []string{"alone/1"},
		},
		{
			name:  "watchdog kill: the hung task times out once, what was queued behind it runs free",
			d:     death{cause: endHung, hung: 13, ledger: true, word: running(13), idempotent: true, maxAttempts: 3},
			items: []held{{id: 13}, {id: 14}, {id: 15}},
			want:  []string{"timeout/1", "free", "free"},
		},
		{
			name:  "watchdog kill, not idempotent: the same",
			d:     death{cause: endHung, hung: 13, ledger: true, word: running(13), maxAttempts: 3},
			items: []held{{id: 12}, {id: 13}, {id: 14}},
			want:  []string{"lost/1", "timeout/1", "free"},
		},
		{
			name:  "watchdog kill just as the hung task returned: it finished, the next was running",
			d:     death{cause: endHung, hung: 13, ledger: true, word: running(14), idempotent: true, maxAttempts: 3},
			items: []held{{id: 13}, {id: 14}, {id: 15}},
			want:  []string{"again/1", "alone/1", "free"},
		},
		{
			name:  "the pool stopped: the same accounting (retire turns re-runs into not run)",
			d:     death{cause: endStopped, ledger: true, word: running(12), maxAttempts: 3},
			items: five(),
			want:  []string{"lost/1", "crash/1", "free", "free", "free"},
		},
		{
			name:  "no ledger, idempotent: every held item may have run and counts a run",
			d:     death{cause: endCrashed, idempotent: true, maxAttempts: 3},
			items: []held{{id: 11}, {id: 12, runs: 1}, {id: 13, runs: 2}},
			want:  []string{"again/1", "alone/2", "maybe/3"},
		},
		{
			name:  "no ledger, not idempotent: every held item fails",
			d:     death{cause: endCrashed, maxAttempts: 3},
			items: []held{{id: 11}, {id: 12}},
			want:  []string{"maybe/1", "maybe/1"},
		},
		{
			name:  "no ledger, watchdog kill of a worker holding one item: that is the hung task",
			d:     death{cause: endHung, idempotent: true, maxAttempts: 3},
			items: []held{{id: 11}},
			want:  []string{"timeout/1"},
		},
		{
			name:  "no ledger, watchdog kill of a worker holding several: each runs alone",
			d:     death{cause: endHung, idempotent: true, maxAttempts: 3},
			items: []held{{id: 11}, {id: 12}},
			want:  []string{"alone/1", "alone/1"},
		},
		{
			name:  "a ledger word that names no held item and no answer is ignored",
			d:     death{cause: endCrashed, ledger: true, word: finished(99), idempotent: true, maxAttempts: 3},
			items: []held{{id: 11}},
			want:  []string{"free"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got []string
			for _, f := range settle(c.d, c.items) {
				got = append(got, describeFate(f))
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("settle = %v; want %v", got, c.want)
			}
		})
	}
}

func describeFate(f fate) string {
	switch {
	case f.rerun && f.state == TaskNotStarted && !f.alone:
		return "free"
	case f.rerun && f.alone:
		return fmt.Sprintf("alone/%d", f.runs)
	case f.rerun:
		return fmt.Sprintf("again/%d", f.runs)
	case f.timeout:
		return fmt.Sprintf("timeout/%d", f.runs)
	case f.state == TaskRunning:
		return fmt.Sprintf("crash/%d", f.runs)
	case f.state == TaskFinished:
		return fmt.Sprintf("lost/%d", f.runs)
	case f.state == TaskMayHaveRun:
		return fmt.Sprintf("maybe/%d", f.runs)
	}
	return fmt.Sprintf("%+v", f)
}

// A worker made progress if it answered an item or the ledger shows one
// finished; a crash under its first task is no progress.
func TestProgressed(t *testing.T) {
	if progressed(0, []fate{{state: TaskRunning}, {state: TaskNotStarted}}) {
		t.Error("a crash under the first task counted as progress")
	}
	if !progressed(0, []fate{{state: TaskFinished}, {state: TaskRunning}}) {
		t.Error("a finished task, answer lost, did not count as progress")
	}
	if !progressed(3, nil) {
		t.Error("answered items did not count as progress")
	}
}
