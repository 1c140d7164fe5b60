package backend

import (
	"errors"
	"fmt"
	"strings"

	"github.com/pluginpool/pluginpool/internal/quote"
)

// Sentinel errors, the same on every back-end. Every error an Executor
// returns, for an item or a call, matches one of them with errors.Is; the
// typed errors carry the details (those below, and each back-end's own:
// pool.CrashError, cluster.LostError, ...).
var (
	// ErrClosed: the executor was closed or terminated; start a new one.
	ErrClosed = errors.New("pool is closed")
	// ErrStart: the plugin could not be started: a local process failed
	// to start (a *pool.StartError says which step; it also matches one
	// of ErrNotFound, ErrChecksum, pool.ErrInterpreter, ErrHandshake,
	// ErrInit, ErrStartTimeout or pool.ErrMaxMemory), or no worker of a
	// cluster serves it.
	ErrStart = errors.New("plugin failed to start")
	// ErrNotFound: the plugin executable is missing or not executable.
	ErrNotFound = errors.New("plugin executable not found")
	// ErrChecksum: the executable's sha256 differs from the configured one.
	ErrChecksum = errors.New("plugin checksum mismatch")
	// ErrHandshake: the executable did not complete the plugin handshake:
	// it is not a pluginpool plugin, or it wrote to stdout before serving
	// (sdk.Serve, pluginpool.serve).
	ErrHandshake = errors.New("not a pluginpool plugin")
	// ErrInit: the plugin's Init returned an error.
	ErrInit = errors.New("plugin init failed")
	// ErrStartTimeout: the plugin did not finish starting within its
	// start timeout.
	ErrStartTimeout = errors.New("plugin start timed out")
	// ErrDegraded: the executor's workers kept failing, so it stopped: a
	// local pool whose workers crashed more than max_restarts times within
	// restart_window (a *pool.DegradedError lists the recent causes).
	// Items it did not run resolve to ErrNotRun; new calls fail fast.
	ErrDegraded = errors.New("pool degraded")
	// ErrTask: the task itself failed (returned an error, panicked, or
	// could not decode its input). A *TaskError says which.
	ErrTask = errors.New("task failed")
	// ErrCrashed: the worker holding the task died, the task ran (or may
	// have run), and it is not run again: the plugin is not idempotent,
	// or the task ran max_attempts times. A *pool.CrashError names the
	// process, how it ended and what the task was doing.
	ErrCrashed = errors.New("worker crashed")
	// ErrTimeout: the task ran longer than its timeout.
	ErrTimeout = errors.New("task timed out")
	// ErrTooLarge: the item is larger than the executor takes
	// (MaxItemBytes), or its result larger than the plugin may return
	// (max_result_bytes). A *TooLargeError says by how much.
	ErrTooLarge = errors.New("item too large")
	// ErrNotRun: the executor degraded before it ran the item, or before
	// it could run it again after its worker died (which is safe: it
	// never ran, or the plugin is idempotent). The item has no result.
	// Every such item carries the same *NotRunError: callers with many
	// items count them rather than report each. It also matches
	// ErrDegraded.
	ErrNotRun = errors.New("not run")
)

// TaskErrorKind says how a task failed.
type TaskErrorKind int

// Task error kinds.
const (
	KindError    TaskErrorKind = iota + 1 // the task returned an error
	KindPanic                             // the task panicked
	KindDecode                            // the input did not decode into the task's input type
	KindCanceled                          // the task was cancelled
)

func (k TaskErrorKind) String() string {
	switch k {
	case KindError:
		return "error"
	case KindPanic:
		return "panic"
	case KindDecode:
		return "decode"
	case KindCanceled:
		return "canceled"
	}
	return fmt.Sprintf("TaskErrorKind(%d)", int(k))
}

// TaskError is a failure reported by the plugin for one task. The worker
// lives on.
type TaskError struct {
	Plugin string
	Kind   TaskErrorKind
	// Message is the plugin's message, as it sent it: any bytes (invalid
	// UTF-8, control bytes). For a panic, with its stack. Error shows it
	// escaped and cut to 16 KiB, safe to print.
	Message string
	Attempt int // which run of the task failed (1 = first)
}

func (e *TaskError) Error() string {
	msg := quote.Message(e.Message)
	switch e.Kind {
	case KindPanic:
		return fmt.Sprintf("%s: task panicked: %s", e.Plugin, strings.TrimPrefix(msg, "panic: "))
	case KindDecode:
		return fmt.Sprintf("%s: bad input: %s", e.Plugin, msg)
	case KindCanceled:
		return fmt.Sprintf("%s: task cancelled: %s", e.Plugin, msg)
	}
	return fmt.Sprintf("%s: %s", e.Plugin, msg)
}

// Is reports whether target is ErrTask.
func (e *TaskError) Is(target error) bool { return target == ErrTask }

// TooLargeError reports an item over MaxItemBytes, or a result over
// MaxResultBytes.
type TooLargeError struct {
	Size, Limit int
	Result      bool // the plugin's result, not the item, was too large
}

func (e *TooLargeError) Error() string {
	if e.Result {
		return fmt.Sprintf("result is %d bytes, over the %d-byte limit (max_result_bytes)", e.Size, e.Limit)
	}
	return fmt.Sprintf("item is %d bytes, over the %d-byte limit (max_item_bytes)", e.Size, e.Limit)
}

// Is reports whether target is ErrTooLarge.
func (e *TooLargeError) Is(target error) bool { return target == ErrTooLarge }

// NotRunError is the result of an item the executor did not run (again)
// because it degraded: see ErrNotRun. Cause says why, e.g. a
// *pool.DegradedError.
type NotRunError struct {
	Plugin string
	Cause  error
}

func (e *NotRunError) Error() string {
	// Short: it is every unrun item's error; the cause is told once.
	return e.Plugin + ": not run: the pool degraded (the degraded error says why)"
}

// Is reports whether target is ErrNotRun.
func (e *NotRunError) Is(target error) bool { return target == ErrNotRun }

// Unwrap returns the cause.
func (e *NotRunError) Unwrap() error { return e.Cause }
