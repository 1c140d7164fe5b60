package sdk

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
)

// taskCtx is the context a task runs with. Allocating one per item (or a
// context.WithValue plus WithCancel) measured ~200 ns of a trivial task's
// ~250 ns in the plugin, mostly malloc and GC, so the runner reuses a
// taskCtx for the next item when the task never looked at it (no method
// was called) and it was not cancelled. A context is therefore valid only
// until its task returns, like the input it came with.
type taskCtx struct {
	parent  context.Context // the Run stream's context
	logger  hclog.Logger
	timeout time.Duration
	id      uint64
	attempt int
	started atomic.Int64  // unix ns; read by the runner's watchdog
	flags   atomic.Uint32 // touched and ended: either means do not reuse

	mu    sync.Mutex
	lines [][]byte
	done  chan struct{}
	err   error
}

// taskCtx flags.
const (
	touched = 1 << iota // a method was called
	ended               // cancel was called
)

// touch marks the context used by the task: it is not reused.
func (c *taskCtx) touch() { c.flags.Or(touched) }

// reusable reports whether the runner may reuse c for the next item: the
// task never looked at it and it was not cancelled. One atomic load.
func (c *taskCtx) reusable() bool { return c.flags.Load() == 0 }

type taskKey struct{}

func (c *taskCtx) Deadline() (time.Time, bool) {
	c.touch()
	if c.timeout > 0 {
		return time.Unix(0, c.started.Load()).Add(c.timeout), true
	}
	return c.parent.Deadline()
}

func (c *taskCtx) Done() <-chan struct{} {
	c.touch()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		// Made on demand: most tasks never ask. The runner cancels the
		// current task when the host cancels its batch or the stream ends.
		c.done = make(chan struct{})
		if c.err == nil {
			c.err = c.parent.Err()
		}
		if c.err != nil {
			c.flags.Or(ended)
			close(c.done)
		}
	}
	return c.done
}

func (c *taskCtx) Err() error {
	c.touch()
	c.mu.Lock()
	err := c.err
	c.mu.Unlock()
	if err != nil {
		return err
	}
	return c.parent.Err()
}

func (c *taskCtx) Value(key any) any {
	c.touch()
	if key == (taskKey{}) {
		return c
	}
	return c.parent.Value(key)
}

// cancel ends the task's context with err; the first call wins.
func (c *taskCtx) cancel(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return
	}
	c.err = err
	c.flags.Or(ended)
	if c.done != nil {
		close(c.done)
	}
}

// cancelled returns the cancellation error without marking c touched.
// The runner asks for every item: an atomic flag spares it the lock.
func (c *taskCtx) cancelled() error {
	if c.flags.Load()&ended == 0 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func fromContext(ctx context.Context) *taskCtx {
	c, _ := ctx.Value(taskKey{}).(*taskCtx)
	return c
}

// TaskID returns the host-assigned id of the task ctx belongs to, or 0
// outside a task. Ids are unique within one host pool; a retried task keeps
// its id.
func TaskID(ctx context.Context) uint64 {
	if c := fromContext(ctx); c != nil {
		return c.id
	}
	return 0
}

// Attempt returns which run of the task this is: 1 the first time, 2 on
// the first retry, and so on. It returns 0 outside a task.
func Attempt(ctx context.Context) int {
	if c := fromContext(ctx); c != nil {
		return c.attempt
	}
	return 0
}

// Logger returns the plugin's logger, tagged with the task id inside a task.
// Its lines reach the host's log with the plugin name, worker slot and pid;
// the host's --log-level decides which are shown (warnings and up by
// default).
func Logger(ctx context.Context) hclog.Logger {
	if c := fromContext(ctx); c != nil {
		return c.logger.With("task", c.id)
	}
	return defaultLogger()
}

// Printf formats a line of output for the task's result. The host writes
// a task's lines whole and in task order, just before its result, so output
// of tasks on different workers never interleaves. A trailing newline is
// optional; embedded newlines make several lines. Outside a task Printf
// writes to standard output, so task functions stay easy to test.
func Printf(ctx context.Context, format string, args ...any) {
	emit(ctx, fmt.Sprintf(format, args...))
}

// Println is Printf with the formatting of fmt.Sprintln.
func Println(ctx context.Context, args ...any) {
	emit(ctx, fmt.Sprintln(args...))
}

func emit(ctx context.Context, s string) {
	s = strings.TrimSuffix(s, "\n")
	c := fromContext(ctx)
	if c == nil {
		fmt.Fprintln(os.Stdout, s)
		return
	}
	c.mu.Lock()
	for line := range strings.SplitSeq(s, "\n") {
		c.lines = append(c.lines, []byte(line))
	}
	c.mu.Unlock()
}
