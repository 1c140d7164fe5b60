package pool

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pluginpool/pluginpool/host/backend"
	"github.com/pluginpool/pluginpool/internal/quote"
)

// ErrInvalidConfig: a Config field is out of range. Fix the field named in
// the message.
var ErrInvalidConfig = errors.New("invalid pool config")

// The errors every back-end shares live in package backend; these are the
// same values under the pool's name, so that errors.Is(err, pool.ErrTask)
// and errors.Is(err, backend.ErrTask) agree. See backend for what each
// means. Local processes add the details: a *StartError, *CrashError,
// *TimeoutError or *DegradedError.
var (
	ErrClosed       = backend.ErrClosed
	ErrStart        = backend.ErrStart
	ErrNotFound     = backend.ErrNotFound
	ErrChecksum     = backend.ErrChecksum
	ErrHandshake    = backend.ErrHandshake
	ErrInit         = backend.ErrInit
	ErrStartTimeout = backend.ErrStartTimeout
	ErrDegraded     = backend.ErrDegraded
	ErrTask         = backend.ErrTask
	ErrCrashed      = backend.ErrCrashed
	ErrTimeout      = backend.ErrTimeout
	ErrTooLarge     = backend.ErrTooLarge
	ErrNotRun       = backend.ErrNotRun
)

// Start and crash causes only local processes have.
var (
	// ErrMaxMemory: the worker running the task exceeded MaxMemory and
	// died (a *CrashError whose MaxMemory is set, which also matches
	// ErrCrashed), or a plugin ran out of memory as it started (a
	// *StartError, which also matches ErrStart): raise MaxMemory.
	ErrMaxMemory = errors.New("worker exceeded max_memory")
	// ErrInterpreter: a .py plugin found no Python that can import grpc
	// and google.protobuf; the message lists the interpreters tried. A
	// *StartError, which also matches ErrStart.
	ErrInterpreter = errors.New("no interpreter for the plugin")
	// ErrCodec: a typed caller (Typed) could not encode an item, which
	// then did not run, or could not decode the plugin's result into its
	// result type. A *CodecError says which and why.
	ErrCodec = errors.New("cannot encode or decode a typed value")
)

// The item-level errors every back-end shares (package backend).
type (
	// TaskError is a failure the plugin reported for one task.
	TaskError = backend.TaskError
	// TaskErrorKind says how a task failed.
	TaskErrorKind = backend.TaskErrorKind
	// TooLargeError reports an item over MaxItemBytes, or a result over
	// MaxResultBytes.
	TooLargeError = backend.TooLargeError
	// NotRunError is the result of an item the pool did not run because
	// it degraded; its Cause is the *DegradedError.
	NotRunError = backend.NotRunError
)

// Task error kinds (backend.TaskErrorKind).
const (
	KindError    = backend.KindError
	KindPanic    = backend.KindPanic
	KindDecode   = backend.KindDecode
	KindCanceled = backend.KindCanceled
)

// TaskState says what a task was doing when its worker died, as the
// plugin's start ledger tells (worker.proto).
type TaskState int

// Task states. The zero value is the one that assumes the least.
const (
	TaskMayHaveRun TaskState = iota // the plugin keeps no start ledger: the task may have run
	TaskNotStarted                  // the task had not started
	TaskRunning                     // the task was running: the worker died under it
	TaskFinished                    // the task had returned; its result was lost with the worker
)

func (s TaskState) String() string {
	switch s {
	case TaskMayHaveRun:
		return "may have run"
	case TaskNotStarted:
		return "not started"
	case TaskRunning:
		return "running"
	case TaskFinished:
		return "finished"
	}
	return fmt.Sprintf("TaskState(%d)", int(s))
}

// CrashError reports a task whose worker died holding it, and which is not
// run again: the plugin is not idempotent, or the task has run MaxAttempts
// times.
type CrashError struct {
	Plugin string
	Slot   int
	Pid    int
	Exit   string    // how the process ended: "exit status 2", "signal: killed", "killed: the pool degraded"
	Task   TaskState // what the task was doing then
	// Attempts is how many times the task ran, this time included: every
	// run that started counts once, whatever ended it.
	Attempts int
	// Idempotent says the plugin declared itself idempotent, so the task
	// ran again until Attempts reached MaxAttempts; otherwise it never runs
	// twice.
	Idempotent bool
	Stderr     []string // the last lines the process wrote to stderr, as written; Error escapes them
	// MaxMemory is the limit the worker exceeded, when that is why it
	// died (Config.MaxMemory); 0 otherwise.
	MaxMemory int64
}

func (e *CrashError) Error() string {
	var b strings.Builder
	died, exit := "died", " ("+e.Exit+")"
	if e.MaxMemory > 0 {
		died = "exceeded max_memory " + FormatSize(e.MaxMemory) + exit
		exit = ""
	}
	switch e.Task {
	case TaskRunning:
		fmt.Fprintf(&b, "%s: worker %d (pid %d) %s while running this task%s", e.Plugin, e.Slot, e.Pid, died, exit)
	case TaskFinished:
		fmt.Fprintf(&b, "%s: worker %d (pid %d) %s%s after this task ran and before its result came back: the result is lost", e.Plugin, e.Slot, e.Pid, died, exit)
	default:
		fmt.Fprintf(&b, "%s: worker %d (pid %d) %s%s holding this task, which may have run (the plugin keeps no start ledger)", e.Plugin, e.Slot, e.Pid, died, exit)
	}
	if e.Idempotent {
		fmt.Fprintf(&b, "; gave up after %d %s (max_attempts)", e.Attempts, plural(e.Attempts, "attempt", "attempts"))
	} else {
		b.WriteString("; not run again: the plugin does not declare itself idempotent")
	}
	writeStderr(&b, e.Stderr)
	return b.String()
}

func (e *CrashError) Is(target error) bool {
	return target == ErrCrashed || (target == ErrMaxMemory && e.MaxMemory > 0)
}

// TimeoutError reports a task that ran longer than TaskTimeout.
type TimeoutError struct {
	Plugin  string
	Timeout time.Duration
	Pid     int
	Killed  bool // the task ignored cancellation and its worker was killed
}

func (e *TimeoutError) Error() string {
	if e.Killed {
		return fmt.Sprintf("%s: task timed out after %s and ignored cancellation; worker pid %d was killed and replaced", e.Plugin, e.Timeout, e.Pid)
	}
	return fmt.Sprintf("%s: task timed out after %s (task_timeout)", e.Plugin, e.Timeout)
}

func (e *TimeoutError) Is(target error) bool { return target == ErrTimeout }

// StartError reports a plugin process that failed to start.
type StartError struct {
	Plugin string
	Path   string
	Slot   int
	Err    error    // matches ErrNotFound, ErrChecksum, ErrInterpreter, ErrHandshake, ErrInit, ErrStartTimeout or ErrMaxMemory when known
	Stderr []string // the last lines the process wrote to stderr, if it ran, as written; Error escapes them
}

func (e *StartError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: cannot start %s: %s", e.Plugin, e.Path, quote.Message(e.Err.Error())) // Init's error is the plugin's text
	writeStderr(&b, e.Stderr)
	return b.String()
}

func (e *StartError) Unwrap() error { return e.Err }

func (e *StartError) Is(target error) bool { return target == ErrStart }

// DegradedError reports a pool that stopped restarting its workers.
type DegradedError struct {
	Plugin string
	// Restarts counts the restarts within Window that looked like a crash
	// loop: after a failed start, or after a worker that died before
	// completing a task. It is MaxRestarts + 1.
	Restarts int
	Window   time.Duration
	Causes   []error // the most recent of those failures, oldest first
}

func (e *DegradedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: pool degraded: %d workers within %s failed to start or died before completing a task (max_restarts); not restarting again. Fix the plugin, then start a new pool. Recent causes:", e.Plugin, e.Restarts, e.Window)
	for _, c := range e.Causes {
		b.WriteString("\n  - ")
		b.WriteString(strings.ReplaceAll(c.Error(), "\n", "\n    "))
	}
	return b.String()
}

func (e *DegradedError) Is(target error) bool { return target == ErrDegraded }

// CodecError reports an item a typed caller could not encode (the item
// did not run), or whose result it could not decode into its result type
// (the task ran: the plugin returned something of another shape).
type CodecError struct {
	// Result is true when the result did not decode, false when the item
	// did not encode.
	Result bool
	Type   string // the Go type encoded from or decoded into
	// Value is the start of the result that did not decode (at most its
	// first 64 bytes, copied), Size its whole length; both are empty for
	// an item that did not encode.
	Value []byte
	Size  int
	Err   error // the codec's reason
}

func (e *CodecError) Error() string {
	if !e.Result {
		return fmt.Sprintf("cannot encode the item (%s): %v", e.Type, e.Err)
	}
	return fmt.Sprintf("cannot decode the result %s as %s: %v", quote.Prefix(e.Value, max(e.Size, len(e.Value))), e.Type, e.Err)
}

func (e *CodecError) Unwrap() error { return e.Err }

func (e *CodecError) Is(target error) bool { return target == ErrCodec }

// ItemsError is a typed Map's error when some of its items failed: Map's
// message (see FirstError), and every failure by its index. It matches
// what the first failure matches with errors.Is (and ErrNotRun when items
// were not run).
type ItemsError struct {
	Items  int         // how many items the call had
	Failed []ItemError // every failed item, in input order
	msg    error       // the summary, wrapping the first failures
}

// ItemError is one failed item of an ItemsError.
type ItemError struct {
	Index int // the item's index in the call's input
	Err   error
}

func (e *ItemsError) Error() string { return e.msg.Error() }

// Unwrap returns the summary, which wraps the first failure (and the
// cause of the items not run).
func (e *ItemsError) Unwrap() error { return e.msg }

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// writeStderr appends a process's last stderr lines to an error message,
// each escaped: they are the plugin's bytes, on their way to a terminal.
func writeStderr(b *strings.Builder, lines []string) {
	if len(lines) == 0 {
		return
	}
	b.WriteString("; last stderr lines:")
	for _, l := range lines {
		b.WriteString("\n  ")
		b.WriteString(quote.Message(l))
	}
}
