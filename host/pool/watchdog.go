package pool

import (
	"time"
)

// watchdog kills workers whose running task is past TaskTimeout plus
// KillGrace: the plugin cancels the task's context at TaskTimeout itself;
// this catches tasks that ignore it and processes that hang outright. The
// killed worker's hung task then fails alone (crash.go).
//
// With the start ledger the watchdog times the task itself: it reads each
// busy worker's word every tick and clocks a running task from the tick it
// first saw it. That is at most a tick late, never early. An answer from
// the worker restarts the clock, so a task the host retried on the same
// worker, which writes the same word again, is timed from its own start.
//
// Without a ledger the pool sees only answers. The plugin answers finished
// items at least every flush interval while a batch runs, so the running
// task started no earlier than flushInterval before the last answer: that
// clock, too, never fires early.
func (p *Pool) watchdog() {
	defer p.wg.Done()
	limit := p.cfg.TaskTimeout + p.cfg.KillGrace
	tick := time.NewTicker(max(10*time.Millisecond, min(p.cfg.TaskTimeout/4, 100*time.Millisecond)))
	defer tick.Stop()
	for {
		select {
		case <-p.stop:
			return
		case now := <-tick.C:
			p.mu.Lock()
			for _, w := range p.workers {
				if w == nil || w.state != workerRunning || len(w.inflight) == 0 {
					continue
				}
				if task, hung := w.hung(now, limit); hung {
					p.log.Warn("killing worker: task ignored its timeout", "slot", w.slot, "pid", w.pid, "task_timeout", p.cfg.TaskTimeout)
					w.endLocked(&killedError{task: task})
				}
			}
			p.mu.Unlock()
		}
	}
}

// watch is the watchdog's view of a worker's ledger, guarded by Pool.mu.
type watch struct {
	word     uint64    // the word at the last tick
	since    time.Time // when the watchdog first saw word
	answered bool      // an answer arrived since the last tick
}

// hung reports whether w's running task has run longer than limit at now,
// and which task it is (0 without a ledger). Called with Pool.mu held.
func (w *worker) hung(now time.Time, limit time.Duration) (task uint64, hung bool) {
	if w.ledger == nil {
		return 0, now.Sub(w.progress) > limit+flushInterval
	}
	v := &w.watch
	word := w.ledger.read()
	if word != v.word || v.answered {
		v.word, v.since, v.answered = word, now, false
	}
	return word >> 1, word&1 == 1 && now.Sub(v.since) > limit
}

// flushInterval is what the host asks plugins for (InitRequest's
// flush_interval_ms): a running batch reports finished items at least this
// often. The watchdog's clock without a ledger relies on it.
const flushInterval = 20 * time.Millisecond
