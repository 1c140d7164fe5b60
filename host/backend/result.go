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
	failed, notRun, first, firstNotRun := 0, 0, -1, -1
	for i := range results {
		switch err := results[i].Err; {
		case err == nil:
		case errors.Is(err, ErrNotRun):
			if firstNotRun < 0 {
				firstNotRun = i
			}
			notRun++
		default:
			if first < 0 {
				first = i
			}
			failed++
		}
	}
	n := len(results)
	switch {
	case failed == 0 && notRun == 0:
		return nil
	case notRun == 0:
		return fmt.Errorf("%d of %d items failed; the first, item %d: %w", failed, n, first, results[first].Err)
	}
	cause := results[firstNotRun].Err
	if ne, ok := errors.AsType[*NotRunError](cause); ok {
		cause = ne.Cause // why, said once
	}
	if failed == 0 {
		return fmt.Errorf("%d of %d items %w, from item %d: %w", notRun, n, ErrNotRun, firstNotRun, cause)
	}
	return fmt.Errorf("%d of %d items failed, the first, item %d: %w; %d %w, from item %d: %w",
		failed, n, first, results[first].Err, notRun, ErrNotRun, firstNotRun, cause)
}
