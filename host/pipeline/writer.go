package pipeline

import (
	"context"
	"sync"

	"github.com/pluginpool/pluginpool/host/backend"
	"github.com/pluginpool/pluginpool/host/jsonl"
)

// writer is the end of the pipeline: it writes the items that came through
// and reports those that failed, one at a time, in the order they arrive
// (input order, in ordered runs).
type writer struct {
	ctx       context.Context
	cancel    context.CancelCauseFunc // stops the run when a write fails
	at        func(origin int) position
	names     []string // stage names
	onFailure func(*Failure)
	progress  func(done, failed int)

	mu     sync.Mutex
	w      *jsonl.Writer
	err    error // the first write error
	ok     int
	failed int
	notRun int // items a degraded stage did not run (not reported one by one)
	first  *Failure
}

func (w *writer) push(e entry) bool { return w.pushRef(&e) }

// pushRef is push without copying the entry (twelve words) to the stack:
// settle calls it directly. It keeps nothing of e.
func (w *writer) pushRef(e *entry) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ctx.Err() != nil {
		// Stopped: items failing now fail because of it.
		return false
	}
	return w.pushLocked(e)
}

// pushLocked is pushRef with w.mu held, for a caller that checked that the
// run goes on (before it took the lock, and since for a failed item).
func (w *writer) pushLocked(e *entry) bool {
	if w.err != nil {
		return false
	}
	switch {
	case e.notRun:
		w.notRun++
	case e.err != nil:
		w.failed++
		at := w.at(e.origin)
		f := &Failure{Index: e.origin, Line: at.line, Arg: at.arg, Stage: e.stage, Plugin: w.names[e.stage], Err: e.err}
		if w.first == nil {
			w.first = f
		}
		if w.onFailure != nil {
			w.onFailure(f)
		}
	default:
		w.ok++
		if err := w.w.Write(backend.Result{Value: e.value, Output: e.out}); err != nil {
			w.fail(err)
			return false
		}
	}
	if w.progress != nil {
		w.progress(w.ok+w.failed, w.failed)
	}
	return true
}

// writeAll writes rs, results that came through, as pushLocked writes
// each (one write for them all). Called with w.mu held.
func (w *writer) writeAll(rs []backend.Result) bool {
	if w.err != nil {
		return false
	}
	if err := w.w.WriteAll(rs); err != nil {
		w.ok += len(rs) // as many as pushLocked would have counted
		w.fail(err)
		return false
	}
	if w.progress == nil {
		w.ok += len(rs)
		return true
	}
	for range rs {
		w.ok++
		w.progress(w.ok+w.failed, w.failed)
	}
	return true
}

// fail stops the run after a write error. Called with w.mu held.
func (w *writer) fail(err error) {
	w.err = err
	w.cancel(err)
}

// flush writes out what is buffered and returns the first write error.
func (w *writer) flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.w.Close(); w.err == nil { // stops the periodic flush too
		w.err = err
	}
	return w.err
}

func (w *writer) counts() (ok, failed, notRun int, first *Failure) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ok, w.failed, w.notRun, w.first
}
