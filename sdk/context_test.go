package sdk

import (
	"context"
	"errors"
	"io"
	"os"
	"slices"
	"testing"
	"time"
)

// captureStdout runs f with os.Stdout redirected to a pipe and returns what
// f wrote.
func captureStdout(t *testing.T, f func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout := os.Stdout
	os.Stdout = w
	defer func() { os.Stdout = stdout }()
	got := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		got <- string(b)
	}()
	f()
	w.Close()
	s := <-got
	r.Close()
	return s
}

func TestPrintOutsideTaskWritesStdout(t *testing.T) {
	ctx := context.Background()
	got := captureStdout(t, func() {
		Printf(ctx, "Number: %d", 1)
		Printf(ctx, "Number: %d\n", 2) // a trailing newline is optional
		Println(ctx, "a", 3, "b")
		Printf(ctx, "x\ny")
	})
	want := "Number: 1\nNumber: 2\na 3 b\nx\ny\n"
	if got != want {
		t.Errorf("stdout = %q, want %q", got, want)
	}
}

func TestPrintInsideTaskCollectsLines(t *testing.T) {
	tc := &taskCtx{parent: context.Background()}
	type key struct{}
	ctx := context.WithValue(tc, key{}, 1) // derived contexts reach the task too
	got := captureStdout(t, func() {
		Printf(ctx, "Number: %d", 1)
		Printf(tc, "two\nlines\n")
		Println(ctx, "a", 3)
		Printf(ctx, "blank after\n\n")
		Printf(ctx, "")
	})
	if got != "" {
		t.Errorf("a task's output went to stdout: %q", got)
	}
	want := []string{"Number: 1", "two", "lines", "a 3", "blank after", "", ""}
	var lines []string
	for _, l := range tc.lines {
		lines = append(lines, string(l))
	}
	if !slices.Equal(lines, want) {
		t.Errorf("lines = %q, want %q", tc.lines, want)
	}
}

func TestTaskInfoOutsideTask(t *testing.T) {
	ctx := context.Background()
	if id := TaskID(ctx); id != 0 {
		t.Errorf("TaskID = %d, want 0", id)
	}
	if a := Attempt(ctx); a != 0 {
		t.Errorf("Attempt = %d, want 0", a)
	}
	if l := Logger(ctx); l == nil || l != defaultLogger() {
		t.Errorf("Logger = %v, want the default logger", l)
	}
}

func TestTaskInfoInsideTask(t *testing.T) {
	tc := &taskCtx{parent: context.Background(), id: 42, attempt: 3, logger: defaultLogger().Named("test")}
	if id := TaskID(tc); id != 42 {
		t.Errorf("TaskID = %d, want 42", id)
	}
	if a := Attempt(tc); a != 3 {
		t.Errorf("Attempt = %d, want 3", a)
	}
	args := Logger(tc).ImpliedArgs()
	if !slices.Equal(args, []any{"task", uint64(42)}) {
		t.Errorf("Logger's implied args = %v, want [task 42]", args)
	}
}

func TestTaskCtxValue(t *testing.T) {
	type key struct{}
	parent := context.WithValue(context.Background(), key{}, "v")
	tc := &taskCtx{parent: parent}
	if v := tc.Value(key{}); v != "v" {
		t.Errorf("Value(parent key) = %v, want v", v)
	}
	if fromContext(tc) != tc {
		t.Error("fromContext does not find the task")
	}
}

// A cancel must reach a task waiting on Done whether or not a task timeout
// is configured: the host cancels batches with no timeout set.
func TestTaskCtxCancel(t *testing.T) {
	for _, timeout := range []time.Duration{0, time.Hour} {
		tc := &taskCtx{parent: context.Background(), timeout: timeout}
		tc.started.Store(time.Now().UnixNano())
		done := tc.Done()
		select {
		case <-done:
			t.Fatalf("timeout %v: Done closed before cancel", timeout)
		default:
		}
		tc.cancel(context.Canceled)
		tc.cancel(errTimeout) // the first cancel wins
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("timeout %v: Done not closed after cancel", timeout)
		}
		if err := tc.Err(); err != context.Canceled {
			t.Errorf("timeout %v: Err = %v, want context.Canceled", timeout, err)
		}
		// Done asked for after the cancel is closed too.
		tc2 := &taskCtx{parent: context.Background(), timeout: timeout}
		tc2.cancel(errTimeout)
		<-tc2.Done()
		if err := tc2.Err(); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("timeout %v: Err = %v, want a DeadlineExceeded", timeout, err)
		}
	}
}

func TestTaskCtxParentCancel(t *testing.T) {
	parent, cancel := context.WithCancel(context.Background())
	tc := &taskCtx{parent: parent}
	cancel()
	if err := tc.Err(); err != context.Canceled {
		t.Errorf("Err after the stream ended = %v, want context.Canceled", err)
	}
}

func TestTaskCtxDeadline(t *testing.T) {
	tc := &taskCtx{parent: context.Background()}
	if _, ok := tc.Deadline(); ok {
		t.Error("a task without timeout has a deadline")
	}
	start := time.Now()
	tc = &taskCtx{parent: context.Background(), timeout: time.Second}
	tc.started.Store(start.UnixNano())
	if d, ok := tc.Deadline(); !ok || !d.Equal(start.Add(time.Second)) {
		t.Errorf("Deadline = %v, %v; want %v", d, ok, start.Add(time.Second))
	}
}
