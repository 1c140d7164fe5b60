package sdk

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// taskCtx is the context a task runs with. One is allocated per item (a
// context.WithValue plus WithCancel per item measured several allocations);
// its done channel is made only if the task asks for it.
type taskCtx struct {
	parent  context.Context // the Run stream's context
	id      uint64
	attempt int
	logger  hclog.Logger
	lines   []string
	started time.Time
	timeout time.Duration

	mu   sync.Mutex
	done chan struct{}
	err  error
}

type taskKey struct{}

func (c *taskCtx) Deadline() (time.Time, bool) {
	if c.timeout > 0 {
		return c.started.Add(c.timeout), true
	}
	return c.parent.Deadline()
}

// Done returns the task's own channel even without a timeout: the host
// cancels single batches too, not only the stream. The runner's watcher
// cancels the running task when the stream ends.
func (c *taskCtx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		c.done = make(chan struct{})
		if c.err == nil {
			c.err = c.parent.Err() // the stream ended before the watcher saw it
		}
		if c.err != nil {
			close(c.done)
		}
	}
	return c.done
}

func (c *taskCtx) Err() error {
	c.mu.Lock()
	err := c.err
	c.mu.Unlock()
	if err != nil {
		return err
	}
	return c.parent.Err()
}

func (c *taskCtx) Value(key any) any {
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
	if c.done != nil {
		close(c.done)
	}
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
	c.lines = append(c.lines, strings.Split(s, "\n")...)
	c.mu.Unlock()
}
