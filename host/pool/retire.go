package pool

import (
	"errors"
	"slices"
)

// retire takes an ended worker out of its slot and settles the items it
// held, sent but not answered, by the policy in crash.go: each runs again
// or fails. When the pool no longer serves, nothing runs again: those
// items resolve as not run. It returns why the worker ended and whether it
// completed a task before (see restarted).
func (p *Pool) retire(w *worker) (reason error, progress bool) {
	// Read before taking the lock: the process is gone (run reaped it), so
	// the word is final.
	word := w.ledger.read()
	defer w.ledger.close()

	p.mu.Lock()
	defer p.mu.Unlock()
	w.state = workerStopped
	if p.workers[w.slot] == w {
		p.workers[w.slot] = nil
		// Stats must not show the dead process as the slot's current one
		// once the items below resolve and callers look.
		p.stats.started(w.slot, 0)
	}
	reason = w.reason
	d := death{ledger: w.ledger != nil, word: word, idempotent: p.info.Idempotent, maxAttempts: p.cfg.MaxAttempts}
	var ke *killedError
	switch {
	case errors.Is(reason, errStream) || errors.Is(reason, errProtocol):
		d.cause = endCrashed
		w.memory = w.overMemory()
		// The restart's warning says it again, better (restartCause).
		p.log.Debug("worker crashed", "slot", w.slot, "pid", w.pid, "exit", w.exitStatus(), "reason", reason)
	case errors.As(reason, &ke):
		d.cause, d.hung = endHung, ke.task
	default:
		d.cause = endStopped
	}

	inflight := w.inflight
	w.inflight = nil
	var items []held
	for _, b := range inflight {
		root := b.top()
		for i := b.done; i < b.len(); i++ {
			pos := b.rootPos(i)
			h := held{id: root.baseID + uint64(pos)}
			if root.runs != nil {
				h.runs, h.alone = int(root.runs[pos]), root.alone[pos]
			}
			items = append(items, h)
		}
	}
	fates := settle(d, items)
	progress = progressed(w.answered, fates)

	serving := p.servingLocked()
	k := 0
	for _, b := range inflight {
		root := b.top()
		j := root.job
		var again []int32
		for i := b.done; i < b.len(); i, k = i+1, k+1 {
			f, pos := fates[k], b.rootPos(i)
			if j.stopped && !j.degraded {
				continue // resolved when the job stopped (see endJob)
			}
			if f.state != TaskNotStarted {
				root.ensureCounters()
				root.runs[pos], root.alone[pos] = int32(f.runs), f.alone
			}
			var err error
			switch {
			case f.timeout:
				err = &TimeoutError{Plugin: p.cfg.Name, Timeout: p.cfg.TaskTimeout, Pid: w.pid, Killed: true}
			case !f.rerun:
				err = w.crashError(d.cause, f)
			case !serving || j.stopped:
				err = p.err // the pool's end, or its degradation: not run
				if p.notRun != nil {
					err = p.notRun
				}
			}
			if err != nil {
				p.resolveLocked(root, pos, Result{Err: err})
				continue
			}
			again = append(again, int32(pos))
			if f.state != TaskNotStarted {
				p.stats.retried(1)
			}
		}
		p.queueAgain(root, again)
	}
	p.cond.Broadcast()
	return reason, progress
}

// queueAgain queues root's items at pos to run again: each quarantined
// item alone, at the front of the queue, so that the next worker free of
// other work settles it first (see crash.go); the others grouped by
// attempt, behind, in the order they came. Called with p.mu held.
func (p *Pool) queueAgain(root *batch, pos []int32) {
	var alone []*batch
	var groups []*batch // one per attempt, in the order of their first item
	for _, i := range pos {
		run := 1
		if root.runs != nil {
			run = int(root.runs[i]) + 1
			if root.alone[i] {
				b := newRetry(root, []int32{i}, run)
				b.single = true
				alone = append(alone, b)
				continue
			}
		}
		k := slices.IndexFunc(groups, func(g *batch) bool { return g.attempt == run })
		if k < 0 {
			k = len(groups)
			groups = append(groups, &batch{job: root.job, root: root, attempt: run})
		}
		groups[k].pos = append(groups[k].pos, i)
	}
	for _, g := range groups {
		p.retry = append(p.retry, newRetry(root, g.pos, g.attempt))
	}
	if len(alone) > 0 {
		p.retry = append(alone, p.retry...)
	}
}

func (p *Pool) servingLocked() bool {
	return p.state == poolRunning || p.state == poolClosing
}

// resolveLocked resolves one item with p.mu held (lock order: Pool.mu, then
// job.mu).
func (p *Pool) resolveLocked(root *batch, pos int, r Result) {
	root.job.resolve(root, pos, r)
	if r.Err != nil {
		p.stats.failedOne(r.Err)
	}
}

// crashError is the error of an item w held that is not run again.
func (w *worker) crashError(cause endCause, f fate) error {
	exit := w.exitStatus()
	switch cause {
	case endCrashed:
		if errors.Is(w.reason, errProtocol) {
			// The host killed it, for what it sent: say that, not "killed".
			exit = w.reason.Error()
		}
	case endHung:
		exit = "killed: a task ran past task_timeout + kill_grace"
	case endStopped:
		exit = "killed: the pool stopped"
		if w.p.state == poolDegraded {
			exit = "killed: the pool degraded"
		}
	}
	ce := &CrashError{
		Plugin: w.p.cfg.Name, Slot: w.slot, Pid: w.pid, Exit: exit, Task: f.state,
		Attempts: f.runs, Idempotent: w.p.info.Idempotent, Stderr: w.stderr.lines(),
	}
	if w.memory {
		ce.MaxMemory = w.p.cfg.MaxMemory
	}
	return ce
}

// ensureCounters allocates root's per-item crash counters. Called with
// p.mu held.
func (b *batch) ensureCounters() {
	if b.runs == nil {
		b.runs = make([]int32, b.len())
		b.alone = make([]bool, b.len())
	}
}
