package pipeline

import (
	"errors"
	"fmt"
	"strings"

	"github.com/pluginpool/pluginpool/host/backend"
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
	// Line is the item's 1-based line in the input (blank lines count);
	// 0 when the items are Spec.Args.
	Line int
	// Arg is the argument the item came from, when the items are
	// Spec.Args.
	Arg string
	// Stage is the 0-based index into Spec.Stages of the stage the item
	// failed in. Messages count stages from 1, as people do.
	Stage int
	// Plugin is that stage's plugin (its executor's Stats().Plugin).
	Plugin string
	// Err is why: an error from the stage's executor, matching
	// backend.ErrTask, backend.ErrCrashed, backend.ErrTimeout,
	// backend.ErrTooLarge, ... with errors.Is.
	Err error
}

// Where names the item: "line 7", or "item 2 (x)" for an argument, quoted
// safely for a terminal.
func (f *Failure) Where() string {
	return position{index: f.Index, line: f.Line, arg: f.Arg}.String()
}

// Error reads "line 7: stage 2 (printer): <why>". The plugin's name is not
// repeated when the executor's error already starts with it.
func (f *Failure) Error() string {
	msg := f.Err.Error()
	msg = strings.TrimPrefix(msg, f.Plugin+": ")
	return fmt.Sprintf("%s: stage %d (%s): %s", f.Where(), f.Stage+1, f.Plugin, msg)
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

// Unwrap returns the first failure, so errors.Is(err, backend.ErrTask)
// and the like look at it.
func (e *FailedError) Unwrap() error { return e.First }

// StageError reports a stage whose executor could not start; the run
// stopped before reading any item.
type StageError struct {
	Stage int   // 0-based index of the stage
	Err   error // why, from its StartFunc: backend.ErrStart, a cluster's connection error, ...
}

// Error reads "stage 2: <why>".
func (e *StageError) Error() string { return fmt.Sprintf("stage %d: %v", e.Stage+1, e.Err) }

// Unwrap returns Err.
func (e *StageError) Unwrap() error { return e.Err }

// DegradedError reports a run that stopped early because a stage's
// executor degraded (backend.ErrDegraded): the items that had not gone
// through were not run. An output file (Spec.OutputPath) is left as it
// was.
type DegradedError struct {
	Stage  int    // 0-based index of the stage that degraded
	Plugin string // its name
	NotRun int    // items not run: Summary.NotRun
	Items  int    // items of the input: Summary.Items
	// Line is the input line of the first item not run; 0 when the items
	// are Spec.Args (Where names it either way).
	Line int
	// Partial says the input was not read to its end (it stayed open with
	// nothing to read, or a read failed): NotRun and Items are lower
	// bounds. InputErr says why.
	Partial  bool
	InputErr error
	Err      error // the executor's degraded error (a *pool.DegradedError locally): why

	first int      // the lowest index of an item not run, while the run goes on
	at    position // where that item came from, once the run is over
}

// Where names the first item not run: "line 501", or "item 3 (x)" for an
// argument.
func (e *DegradedError) Where() string { return e.at.String() }

func (e *DegradedError) Error() string {
	at := "at least "
	if !e.Partial {
		at = ""
	}
	return fmt.Sprintf("stage %d (%s) degraded: %s%d of %d items were not run, from %s: %v", e.Stage+1, e.Plugin, at, e.NotRun, e.Items, e.Where(), e.Err)
}

// Is reports whether target is backend.ErrNotRun.
func (e *DegradedError) Is(target error) bool { return target == backend.ErrNotRun }

// Unwrap returns the executor's degraded error, so that errors.Is(err,
// backend.ErrDegraded) holds.
func (e *DegradedError) Unwrap() error { return e.Err }
