package pipeline

import (
	"errors"
	"fmt"
	"strings"

	"github.com/pluginpool/pluginpool/host/pool"
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

// DegradedError reports a run that stopped early because a stage's pool
// degraded (pool.ErrDegraded): the items that had not gone through were
// not run. An output file (Spec.OutputPath) is left as it was.
type DegradedError struct {
	Stage  int    // 0-based index of the stage that degraded
	Plugin string // its name
	NotRun int    // items not run: Summary.NotRun
	Items  int    // items of the input: Summary.Items
	Line   int    // the input line of the first item not run
	// Partial says the input was not read to its end (it stayed open with
	// nothing to read, or a read failed): NotRun and Items are lower
	// bounds.
	Partial bool
	Err     error // the stage pool's *pool.DegradedError: why

	first int // the lowest index of an item not run, while the run goes on
}

func (e *DegradedError) Error() string {
	at := "at least "
	if !e.Partial {
		at = ""
	}
	return fmt.Sprintf("stage %d (%s) degraded: %s%d of %d items were not run, from line %d: %v", e.Stage+1, e.Plugin, at, e.NotRun, e.Items, e.Line, e.Err)
}

// Is reports whether target is pool.ErrNotRun.
func (e *DegradedError) Is(target error) bool { return target == pool.ErrNotRun }

// Unwrap returns the pool's *pool.DegradedError, so that errors.Is(err,
// pool.ErrDegraded) holds.
func (e *DegradedError) Unwrap() error { return e.Err }
