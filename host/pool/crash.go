package pool

// Crash accounting: what becomes of the items a worker held, sent but not
// answered, when it ended. This file is the whole policy; settle applies
// it and has table tests (crash_internal_test.go); retire (retire.go)
// feeds it and carries out its verdicts.
//
// What the host knows when a worker ends: the items it sent, in order
// (batches in send order, items in order, which is the order the plugin
// runs them in), which of them it answered, and, for a plugin that keeps
// the start ledger (worker.proto), the ledger's last word: the last task
// that started (T) and whether it was still running. So, in send order:
//
//   - items after T never started: they run again at no cost, even for a
//     plugin that is not idempotent;
//   - T, if it was running, is the task the worker died under: that run
//     counts. If a task ignored its timeout and the watchdog killed its
//     worker, T is that task: it fails with a *TimeoutError (Killed) and
//     never runs again;
//   - items before T (and T, if it had finished) ran, and their answers
//     were lost with the worker: that run counts, and for a plugin that is
//     not idempotent they fail with a *CrashError saying so (TaskFinished).
//
// Every run counts exactly once: an item that ran runs again only if the
// plugin is idempotent and it has run fewer than MaxAttempts times
// (retries the task asked for with sdk.Retry count too); otherwise it fails
// with a *CrashError whose Attempts is the number of runs.
//
// Quarantine: an item that was running when its worker died runs alone on
// its next attempt, on a worker with nothing else in flight, before other
// retried items (queueAgain), so its fate is settled first. A poison item
// then costs its batch-mates at most one crash: the items that finished
// before it without their answers reaching the host run once more, after
// which it crashes alone. Without it, every crash of a poison item would
// charge those batch-mates a run, and they would fail at MaxAttempts with
// it.
//
// A plugin without the ledger (a third-party SDK) tells nothing, so every
// item it held may have run: each counts a run, and fails if the plugin is
// not idempotent. To find a poison item among them, an item that has now
// counted two runs runs alone. After a watchdog kill the hung task is known
// only if the worker held one item; otherwise each held item runs alone,
// and the next kill names it.
//
// One case the ledger cannot tell apart: a task the worker answered with
// sdk.Retry, sent to the same worker again, whose id is both the ledger's
// and that of the last item the worker answered (nothing ran in between,
// or the second run finished and its answer was lost). It is taken as the
// second run: an attempt may be counted that did not happen, never the
// other way round.

// endCause is why a worker ended, as crash accounting sees it.
type endCause int

const (
	endCrashed endCause = iota + 1 // the process died, or broke the stream or the protocol
	endHung                        // the watchdog killed it: a task ignored its timeout
	endStopped                     // the pool stopped or degraded and killed it
)

// death is what the host knows about a worker that ended holding items.
type death struct {
	cause endCause
	// hung is the id of the task the watchdog saw running too long
	// (endHung, with a ledger); 0 when it is not known.
	hung uint64
	// ledger says the plugin keeps the start ledger; word is its last
	// word: id<<1|1 while task id ran, id<<1 after it returned, 0 if no
	// task started.
	ledger      bool
	word        uint64
	idempotent  bool
	maxAttempts int
}

// held is an item a worker held unanswered, in the order it was sent.
type held struct {
	id    uint64
	runs  int  // runs that ended without an answer, or asked for a retry, before this worker
	alone bool // quarantined: runs alone
}

// fate is settle's verdict on one held item.
type fate struct {
	state TaskState // what the item did on the worker that ended
	runs  int       // runs counted, including one on this worker if it ran
	// rerun: queue it again (alone: on a worker with nothing else in
	// flight); otherwise it fails: with a *TimeoutError if timeout, else
	// with a *CrashError.
	rerun   bool
	alone   bool
	timeout bool
}

// settle decides the fate of each item a dead worker held. items are in
// send order; so are the fates. It is the crash policy described at the
// top of this file, free of locks, processes and time.
func settle(d death, items []held) []fate {
	fates := make([]fate, len(items))
	t, running := -1, false // T's index in items, and whether it was still running
	if d.ledger && d.word != 0 {
		id := d.word >> 1
		for i, it := range items {
			if it.id == id {
				t, running = i, d.word&1 == 1
				break
			}
		}
		// Not found: T was answered, so nothing held had started. Found,
		// it may also be the last answered item (the ambiguous case
		// above): taken as found.
	}
	for i, it := range items {
		f := &fates[i]
		f.runs, f.alone = it.runs, it.alone
		switch {
		case !d.ledger:
			f.state = TaskMayHaveRun
		case i < t, i == t && !running:
			f.state = TaskFinished
		case i == t:
			f.state = TaskRunning
		default:
			f.state = TaskNotStarted
		}
		if f.state == TaskNotStarted {
			f.rerun = true
			continue
		}
		f.runs++
		switch f.state {
		case TaskRunning:
			f.alone = true
			f.timeout = d.cause == endHung && it.id == d.hung
		case TaskMayHaveRun:
			f.alone = f.alone || f.runs >= 2 || d.cause == endHung
			f.timeout = d.cause == endHung && len(items) == 1
		}
		f.rerun = !f.timeout && d.idempotent && f.runs < d.maxAttempts
	}
	return fates
}

// progressed reports whether a worker completed a task before it ended:
// it answered one, or the fates show one finished. Restarts after workers
// that made progress do not count toward MaxRestarts (see restarted).
func progressed(answered int, fates []fate) bool {
	if answered > 0 {
		return true
	}
	for _, f := range fates {
		if f.state == TaskFinished {
			return true
		}
	}
	return false
}
