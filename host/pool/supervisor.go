package pool

import (
	"errors"
	"fmt"
	"time"

	"github.com/pluginpool/pluginpool/internal/quote"
)

// supervise keeps slot's worker alive: start, serve, reap, requeue, restart
// with backoff, until the pool stops or degrades. The first start's outcome
// goes to ready; a slot that cannot start the first time gives up.
func (p *Pool) supervise(slot int, ready chan<- error) {
	defer p.wg.Done()
	failures := 0 // consecutive generations that ended without completing a task
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
			if first || !p.restarted(slot, err, true) {
				return
			}
			failures++
			if !p.sleep(backoff(failures)) {
				return
			}
			continue
		}
		w.run()
		reason, progress := p.retire(w)
		switch {
		case reason == errRecycle:
			failures = 0
			continue
		case !p.serving():
			return
		}
		if progress {
			failures = 0
		}
		failures++
		if !p.restarted(slot, w.restartCause(reason), !progress) {
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
//
// Only restarts that look like a crash loop count toward MaxRestarts:
// after a start that failed, or a worker that died before completing a
// task (counts). A worker that completed tasks was making progress, and
// replacing it costs nothing but the restart: one killed every few seconds
// by an OOM killer or an operator, or a poison item's crash among healthy
// items, must not degrade the pool while the work gets done. A plugin that
// crashes at start or on every first task degrades after MaxRestarts + 1
// of them; poison items fail on their own (MaxAttempts).
func (p *Pool) restarted(slot int, cause error, counts bool) bool {
	p.stats.restarted(slot)
	if !counts {
		p.log.Warn("restarting worker", "slot", slot, "cause", cause)
		return true
	}
	p.mu.Lock()
	now := time.Now()
	keep := p.restart[:0]
	for _, r := range p.restart {
		if now.Sub(r.at) < p.cfg.RestartWindow {
			keep = append(keep, r)
		}
	}
	p.restart = append(keep, restartRecord{at: now, cause: cause})
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
	// The error itself reaches every caller (each item's NotRunError, and
	// Close); the log says only that it happened.
	p.log.Error("pool degraded: not restarting again", "restarts", de.Restarts, "window", de.Window)
	p.halt(poolDegraded, de)
	return false
}

// restartCause says, in one line, why w ended, for the log and the
// degraded error's list of causes.
func (w *worker) restartCause(reason error) error {
	if !errors.Is(reason, errStream) {
		return fmt.Errorf("worker %d (pid %d): %w", w.slot, w.pid, reason)
	}
	// The broken stream says nothing the exit status does not.
	msg := fmt.Sprintf("worker %d (pid %d) died: %s", w.slot, w.pid, w.exitStatus())
	if w.memory {
		msg = fmt.Sprintf("worker %d (pid %d) exceeded max_memory %s (%s)", w.slot, w.pid, FormatSize(w.p.cfg.MaxMemory), w.exitStatus())
	}
	if l := w.stderr.last(); l != "" {
		msg += "; its last stderr line: " + quote.Item([]byte(l)) // the plugin's bytes, on one line
	}
	return errors.New(msg)
}
