package backend

import (
	"errors"
	"fmt"
)

// Result is the outcome of one item.
type Result struct {
	// Value is the task's encoded result. It is nil when the task failed
	// or returned no value (a task run only for its output).
	Value []byte
	// Output holds the lines the task printed through the SDK, in order.
	Output []string
	// Err says why the item failed, or is nil. It matches one of ErrTask,
	// ErrCrashed, ErrTimeout, ErrTooLarge, ErrNotRun (the executor
	// degraded before running it; also ErrDegraded), ErrClosed or the
	// context's error with errors.Is.
	Err error
}

// FirstError summarizes results as Map's error: nil if none failed, else
// how many failed, wrapping the first failure. Items not run (ErrNotRun)
// are counted apart: they share one cause, said once.
func FirstError(results []Result) error {
	t := Tally{Items: len(results)}
	for i := range results {
		if err := results[i].Err; err != nil {
			t.Add(i, err)
		}
	}
	return t.Err()
}

// Tally builds FirstError's summary one failed item at a time, for a
// caller that never holds a []Result (pool.Typed's Map). Its zero value
// with Items set is ready to use.
type Tally struct {
	Items int // items in the call

	failed, notRun      int
	first, firstNotRun  int
	firstErr, notRunErr error
}

// Add counts item i, which failed with err. Items must be added in input
// order for the summary to name the first failure.
func (t *Tally) Add(i int, err error) {
	if errors.Is(err, ErrNotRun) {
		if t.notRun == 0 {
			t.firstNotRun, t.notRunErr = i, err
		}
		t.notRun++
		return
	}
	if t.failed == 0 {
		t.first, t.firstErr = i, err
	}
	t.failed++
}

// Err is the summary, as FirstError words it: nil if nothing failed.
func (t *Tally) Err() error {
	n := t.Items
	switch {
	case t.failed == 0 && t.notRun == 0:
		return nil
	case t.notRun == 0:
		return fmt.Errorf("%d of %d items failed; the first, item %d: %w", t.failed, n, t.first, t.firstErr)
	}
	cause := t.notRunErr
	if ne, ok := errors.AsType[*NotRunError](cause); ok {
		cause = ne.Cause // why, said once
	}
	if t.failed == 0 {
		return fmt.Errorf("%d of %d items %w, from item %d: %w", t.notRun, n, ErrNotRun, t.firstNotRun, cause)
	}
	return fmt.Errorf("%d of %d items failed, the first, item %d: %w; %d %w, from item %d: %w",
		t.failed, n, t.first, t.firstErr, t.notRun, ErrNotRun, t.firstNotRun, cause)
}
