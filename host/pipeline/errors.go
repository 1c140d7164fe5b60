package pipeline

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Callers match them with errors.Is; the typed errors
// below carry the details.
var (
	// ErrInvalidSpec: a Spec field is missing or contradicts another. Fix
	// the field named in the message.
	ErrInvalidSpec = errors.New("invalid pipeline spec")
	// ErrFailed: the run completed, but some items failed. A *FailedError
	// counts them; each one was passed to Spec.OnFailure. The output holds
	// every other item's result (an output file was renamed into place).
	ErrFailed = errors.New("items failed")
)

// Failure is one item that failed in some stage and went no further.
type Failure struct {
	// Index is the item's 0-based position among the input's items.
	Index int
	// Line is the item's 1-based line in the input (blank lines count).
	Line int
	// Stage is the 0-based index into Spec.Stages of the stage the item
	// failed in. Messages count stages from 1, as people do.
	Stage int
	// Plugin is that stage's name (its pool.Config.Name).
	Plugin string
	// Err is why: an error from host/pool, matching pool.ErrTask,
	// pool.ErrCrashed, pool.ErrTimeout, pool.ErrTooLarge, ... with errors.Is.
	Err error
}

// Error reads "line 7: stage 2 (printer): <why>". The plugin's name is not
// repeated when the pool's error already starts with it.
func (f *Failure) Error() string {
	msg := f.Err.Error()
	msg = strings.TrimPrefix(msg, f.Plugin+": ")
	return fmt.Sprintf("line %d: stage %d (%s): %s", f.Line, f.Stage+1, f.Plugin, msg)
}

// Unwrap returns Err.
func (f *Failure) Unwrap() error { return f.Err }

// FailedError reports a run that completed with failed items.
type FailedError struct {
	Failed int      // items that failed
	Items  int      // items read
	First  *Failure // the first failure reported
}

func (e *FailedError) Error() string {
	return fmt.Sprintf("%d of %d items failed; the first, %v", e.Failed, e.Items, e.First)
}

// Is reports whether target is ErrFailed.
func (e *FailedError) Is(target error) bool { return target == ErrFailed }

// Unwrap returns the first failure, so errors.Is(err, pool.ErrTask) and
// the like look at it.
func (e *FailedError) Unwrap() error { return e.First }
