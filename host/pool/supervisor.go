package pool

import (
	"errors"
	"fmt"
	"time"

	workerpb "github.com/pluginpool/pluginpool/sdk/proto"
)

// supervise keeps slot's worker alive: start, serve, reap, requeue, restart
// with backoff, until the pool stops or degrades. The first start's outcome
// goes to ready; a slot that cannot start the first time gives up.
func (p *Pool) supervise(slot int, ready chan<- error) {
	defer p.wg.Done()
	failures := 0 // consecutive generations that ended without finishing a batch
	for first := true; ; first = false {
		w, err := p.launch(slot)
		// Register before reporting the first start: once Start returns,
		// every slot has its worker (and Stats its pid).
		if err == nil && !p.register(w) {
			w.kill()
			if first {
				ready <- ErrClosed
			}
			return
		}
		if first {
			ready <- err
		}
		if err != nil {
			if first || !p.restarted(slot, err) {
				return
			}
			failures++
			if !p.sleep(backoff(failures)) {
				return
			}
			continue
		}
		w.run()
		reason := p.retire(w)
		switch {
		case reason == errRecycle:
			failures = 0
			continue
		case !p.serving():
			return
		}
		if w.answered > 0 {
			failures = 0
		}
		failures++
		if !p.restarted(slot, reason) {
			return
		}
		if !p.sleep(backoff(failures)) {
			return
		}
	}
}

// backoff is the wait before restarting a slot after its n-th consecutive
// failure: none after a worker that did useful work, then 10 ms doubling
// to 1 s.
func backoff(n int) time.Duration {
	if n <= 1 {
		return 0
	}
	return min(10*time.Millisecond<<min(n-2, 10), time.Second)
}

// sleep waits d, or returns false at once if the pool stops.
func (p *Pool) sleep(d time.Duration) bool {
	if d <= 0 {
		return p.serving()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return p.serving()
	case <-p.stop:
		return false
	}
}

func (p *Pool) serving() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.state == poolRunning || p.state == poolClosing
}

// register makes w its slot's live worker, unless the pool stopped.
func (p *Pool) register(w *worker) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state != poolRunning && p.state != poolClosing {
		return false
	}
	w.state = workerRunning
	p.workers[w.slot] = w
	p.stats.started(w.slot, w.pid)
	p.cond.Broadcast()
	return true
}

// restarted records that slot is restarting because of cause. It reports
// false, after degrading the pool, when that is one restart too many.
func (p *Pool) restarted(slot int, cause error) bool {
	p.mu.Lock()
	now := time.Now()
	keep := p.restart[:0]
	for _, r := range p.restart {
		if now.Sub(r.at) < p.cfg.RestartWindow {
			keep = append(keep, r)
		}
	}
	p.restart = append(keep, restartRecord{at: now, cause: cause})
	p.stats.restarted(slot)
	if len(p.restart) <= p.cfg.MaxRestarts {
		p.mu.Unlock()
		p.log.Warn("restarting worker", "slot", slot, "cause", cause)
		return true
	}
	if p.state != poolRunning && p.state != poolClosing {
		p.mu.Unlock()
		return false
	}
	de := &DegradedError{Plugin: p.cfg.Name, Restarts: len(p.restart), Window: p.cfg.RestartWindow}
	for _, r := range p.restart[max(0, len(p.restart)-5):] {
		de.Causes = append(de.Causes, r.cause)
	}
	p.mu.Unlock()
	p.log.Error("pool degraded", "error", de)
	p.halt(poolDegraded, de)
	return false
}

// nextRequest blocks until w has something to send: a cancel, or a batch
// when w has room for one. It returns nil when w is to stop sending.
func (p *Pool) nextRequest(w *worker) *workerpb.Batch {
	p.mu.Lock()
	for {
		if w.state != workerRunning {
			p.mu.Unlock()
			return nil
		}
		if len(w.cancels) > 0 {
			seq := w.cancels[0]
			w.cancels = w.cancels[1:]
			p.mu.Unlock()
			return &workerpb.Batch{Seq: seq, Cancel: true}
		}
		recycle := p.cfg.MaxTasksPerWorker > 0 && w.tasks >= p.cfg.MaxTasksPerWorker
		if recycle && len(w.inflight) == 0 {
			w.endLocked(errRecycle)
			continue
		}
		alone := len(w.inflight) > 0 && w.inflight[0].alone // nothing may follow it
		if !recycle && !alone && len(w.inflight) < p.cfg.InFlight {
			if b := p.cut(w); b != nil {
				now := time.Now()
				w.seq++
				b.w, b.seq, b.sentAt, b.done = w, w.seq, now, 0
				if len(w.inflight) == 0 {
					w.headSince, w.progress = now, now
				}
				w.inflight = append(w.inflight, b)
				w.tasks += b.len()
				p.mu.Unlock()
				return b.request()
			}
		}
		p.cond.Wait()
	}
}

// deliver records an answer from w: it advances w's head batch and
// resolves the answered items. An answer that breaks the protocol ends w.
func (p *Pool) deliver(w *worker, resp *workerpb.Batch) error {
	// Before the lock: it reads every item boundary.
	if err := checkAnswer(resp); err != nil {
		return err
	}
	p.mu.Lock()
	if w.state != workerRunning {
		p.mu.Unlock()
		return nil // an ending generation's answers are dropped
	}
	if len(w.inflight) == 0 || w.inflight[0].seq != resp.Seq {
		p.mu.Unlock()
		return fmt.Errorf("%w: answer for batch %d, which is not the one running", errProtocol, resp.Seq)
	}
	b := w.inflight[0]
	n, start := len(resp.Ends), b.done
	if int(resp.First) != start || start+n > b.len() {
		p.mu.Unlock()
		return fmt.Errorf("%w: answer for items %d..%d of batch %d, which has %d of %d answered", errProtocol, resp.First, int(resp.First)+n, resp.Seq, start, b.len())
	}
	b.done += n
	now := time.Now()
	w.progress = now
	if b.done == b.len() {
		w.inflight[0] = nil
		w.inflight = w.inflight[1:]
		w.answered++
		began := w.headSince
		if b.sentAt.After(began) {
			began = b.sentAt
		}
		p.observe(b.len(), now.Sub(began))
		p.stats.batch(w.slot, b.len(), now.Sub(began))
		w.headSince = now
		p.cond.Broadcast()
	}
	p.mu.Unlock()

	checkValues(resp)
	retry := p.resolveAnswer(b, start, resp)
	if len(retry) > 0 {
		p.requeue(b.top(), retry)
	}
	return nil
}

var errProtocol = errors.New("plugin broke the wire protocol")

// resolveAnswer stores the results of resp, which answers items start.. of
// b. It returns the root positions of items the plugin asked to retry
// that may run again.
func (p *Pool) resolveAnswer(b *batch, start int, resp *workerpb.Batch) (retry []int32) {
	root, j := b.top(), b.job
	errs, outs := resp.Errors, resp.Output
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.err != nil {
		return nil
	}
	if b.pos == nil && len(errs) == 0 && len(outs) == 0 {
		// The common case, about a tenth of the host's CPU in a 1M-item
		// map: a run of plain values into consecutive root positions.
		res := root.results[start : start+len(resp.Ends)]
		prev := uint32(0)
		if j.src != nil {
			// Map's results are freshly zeroed: store the one pointer,
			// not the whole struct (each pointer store pays a write
			// barrier while the GC runs, which is most of a big Map).
			for i, end := range resp.Ends {
				if end > prev {
					res[i].Value = resp.Data[prev:end:end]
				}
				prev = end
			}
		} else {
			for i, end := range resp.Ends {
				if end > prev {
					res[i] = Result{Value: resp.Data[prev:end:end]}
				} else {
					res[i] = Result{}
				}
				prev = end
			}
		}
		root.markRange(start, start+len(res))
		j.settle(root, len(res))
		p.stats.answered(len(res), 0, 0)
		return nil
	}
	prev, settled, failed, timeouts := uint32(0), 0, 0, 0
	for i, end := range resp.Ends {
		k := start + i // index within b
		r := Result{}
		if end > prev {
			r.Value = resp.Data[prev:end:end]
		}
		prev = end
		for len(outs) > 0 && int(outs[0].Index) < k {
			outs = outs[1:]
		}
		if len(outs) > 0 && int(outs[0].Index) == k {
			r.Output = outputLines(outs[0].Lines)
		}
		for len(errs) > 0 && int(errs[0].Index) < k {
			errs = errs[1:]
		}
		pos := b.rootPos(k)
		if len(errs) > 0 && int(errs[0].Index) == k {
			e := errs[0]
			if e.Kind == workerpb.ErrorKind_ERROR_KIND_RETRY && b.attempt < p.cfg.MaxAttempts {
				retry = append(retry, int32(pos))
				continue
			}
			r.Value = nil
			r.Err = p.taskError(e, b.attempt)
			failed++
			if e.Kind == workerpb.ErrorKind_ERROR_KIND_TIMEOUT {
				timeouts++
			}
		}
		root.results[pos] = r
		root.mark(pos)
		settled++
	}
	if settled > 0 {
		j.settle(root, settled)
	}
	p.stats.answered(settled-failed, failed, timeouts)
	return retry
}

// taskError turns a plugin's per-item error into the pool's.
func (p *Pool) taskError(e *workerpb.ItemError, attempt int) error {
	switch e.Kind {
	case workerpb.ErrorKind_ERROR_KIND_TIMEOUT:
		return &TimeoutError{Plugin: p.cfg.Name, Timeout: p.cfg.TaskTimeout}
	case workerpb.ErrorKind_ERROR_KIND_PANIC:
		return &TaskError{Plugin: p.cfg.Name, Kind: KindPanic, Message: string(e.Message), Attempt: attempt}
	case workerpb.ErrorKind_ERROR_KIND_DECODE:
		return &TaskError{Plugin: p.cfg.Name, Kind: KindDecode, Message: string(e.Message), Attempt: attempt}
	case workerpb.ErrorKind_ERROR_KIND_CANCELED:
		return &TaskError{Plugin: p.cfg.Name, Kind: KindCanceled, Message: string(e.Message), Attempt: attempt}
	}
	return &TaskError{Plugin: p.cfg.Name, Kind: KindError, Message: string(e.Message), Attempt: attempt}
}

// outputLines converts an item's printed lines to the strings Result
// carries. Go strings hold any bytes; printing them escaped is the
// writer's business.
func outputLines(lines [][]byte) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = string(l)
	}
	return out
}

// requeue queues root's items at pos, which asked to be retried, to run
// again one run later, through the same grouping as items a crash left
// unanswered (so a quarantined item stays alone).
func (p *Pool) requeue(root *batch, pos []int32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if root.job.stopped {
		return
	}
	root.ensureCounters()
	for _, i := range pos {
		root.runs[i]++
	}
	p.queueAgain(root, pos)
	p.cond.Broadcast()
}

// retire takes an ended worker out of its slot and settles the batches it
// had in flight. It returns why the worker ended.
//
// The plugin runs a worker's batches in order and a batch's items in
// order, but the host cannot tell which task was running when it died:
// the plugin reports finished items only every flush interval, and the
// answers it sent last may die with it, unread (seen in tests: a head
// batch that had finished, its answer lost, the crash in the batch
// behind). So a crash costs an attempt only to an item that was the sole
// unanswered one on the worker. Items in the head batch during a crash
// count it; one that counted two runs alone from then on, with nothing else
// in flight on its worker, so the next crash under it is surely its own:
// a poison item fails by itself and its batch-mates pay nothing. Other
// items are re-run as they were. For plugins that are not idempotent, any
// unanswered item may have run, so they fail rather than run twice.
//
// A kill for a timeout is different: the plugin was alive, so its answers
// arrived and the hung task is in the head batch, but items that finished
// just before it are unanswered too (the plugin reports them when a later
// item finishes; worker.proto, flush_interval_ms). The hung task is known
// only when it is the head batch's one unanswered item; otherwise each
// unanswered head item runs again alone, at no cost in attempts, and the
// next kill names the culprit (or, for plugins that are not idempotent,
// they fail, as they do after a crash).
func (p *Pool) retire(w *worker) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	w.state = workerStopped
	if p.workers[w.slot] == w {
		p.workers[w.slot] = nil
		// Stats must not show the dead process as the slot's current one
		// once the items below resolve and callers look.
		p.stats.started(w.slot, 0)
	}
	reason := w.reason
	crashed := errors.Is(reason, errStream) || errors.Is(reason, errProtocol)
	if crashed {
		p.log.Warn("worker crashed", "slot", w.slot, "pid", w.pid, "exit", w.exitStatus(), "reason", reason)
	}
	inflight := w.inflight
	w.inflight = nil
	unanswered := 0
	for _, b := range inflight {
		unanswered += b.len() - b.done
	}
	for k, b := range inflight {
		root := b.top()
		head := k == 0
		var again []int32
		for i := b.done; i < b.len(); i++ {
			pos := int32(b.rootPos(i))
			suspect := head && i == b.done
			var err error
			switch {
			case root.job.stopped:
				continue
			case !p.servingLocked():
				err = p.err
			case reason == errKilled && suspect && b.len()-b.done == 1:
				err = &TimeoutError{Plugin: p.cfg.Name, Timeout: p.cfg.TaskTimeout, Pid: w.pid, Killed: true}
			case reason == errKilled && head && !p.info.Idempotent:
				ce := w.crashError(1).(*CrashError)
				ce.Exit = "killed: a task of its batch ran past task_timeout + kill_grace"
				err = ce
			case reason == errKilled && head:
				root.ensureCounters()
				root.crashes[pos] = max(root.crashes[pos], 2) // quarantined: runs alone
			case crashed && !p.info.Idempotent:
				err = w.crashError(1)
			case crashed && head:
				root.ensureCounters()
				if root.crashes[pos] < 255 {
					root.crashes[pos]++
				}
				// Only the worker's sole unanswered item surely ran when
				// it died (see above): only it pays an attempt. Others run
				// alone after a second crash, and pay then.
				if unanswered == 1 {
					runs := int(root.runs[pos]) + 1
					if runs >= p.cfg.MaxAttempts {
						err = w.crashError(runs)
						break
					}
					root.runs[pos]++
				}
			}
			if err != nil {
				p.resolveLocked(root, int(pos), Result{Err: err})
				continue
			}
			again = append(again, pos)
		}
		p.queueAgain(root, again)
	}
	p.cond.Broadcast()
	return reason
}

// queueAgain queues root's items at pos, grouped by run, quarantined items
// alone. Called with p.mu held.
func (p *Pool) queueAgain(root *batch, pos []int32) {
	if len(pos) == 0 {
		return
	}
	groups := map[int][]int32{}
	for _, i := range pos {
		run := 1
		if root.runs != nil {
			run = int(root.runs[i]) + 1
			if root.crashes[i] >= 2 {
				b := newRetry(root, []int32{i}, run)
				b.alone = true
				p.retry = append(p.retry, b)
				continue
			}
		}
		groups[run] = append(groups[run], i)
	}
	for run, ps := range groups {
		p.retry = append(p.retry, newRetry(root, ps, run))
	}
	p.stats.retried(len(pos))
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

func (w *worker) crashError(attempts int) error {
	return &CrashError{Plugin: w.p.cfg.Name, Slot: w.slot, Pid: w.pid, Exit: w.exitStatus(), Attempts: attempts, Stderr: w.stderr.lines()}
}

// ensureCounters allocates root's per-item crash counters. Called with
// p.mu held.
func (b *batch) ensureCounters() {
	if b.runs == nil {
		b.runs = make([]uint8, b.len())
		b.crashes = make([]uint8, b.len())
	}
}

// watchdog kills workers whose running task is past TaskTimeout plus
// KillGrace: the plugin cancels the task's context at TaskTimeout itself;
// this catches tasks that ignore it and processes that hang outright.
//
// The pool cannot see when a task starts, only answers. The plugin answers
// finished items at least every flush interval while a batch runs, so the
// running task started no earlier than flushInterval before the last
// answer: the clock here never fires early.
func (p *Pool) watchdog() {
	defer p.wg.Done()
	limit := p.cfg.TaskTimeout + p.cfg.KillGrace + flushInterval
	tick := time.NewTicker(max(10*time.Millisecond, min(p.cfg.TaskTimeout/4, 100*time.Millisecond)))
	defer tick.Stop()
	for {
		select {
		case <-p.stop:
			return
		case now := <-tick.C:
			p.mu.Lock()
			for _, w := range p.workers {
				if w != nil && w.state == workerRunning && len(w.inflight) > 0 && now.Sub(w.progress) > limit {
					p.log.Warn("killing worker: task ignored its timeout", "slot", w.slot, "pid", w.pid, "task_timeout", p.cfg.TaskTimeout)
					w.endLocked(errKilled)
				}
			}
			p.mu.Unlock()
		}
	}
}

// flushInterval is the SDK's default: a running batch reports finished
// items at least this often.
const flushInterval = 20 * time.Millisecond
