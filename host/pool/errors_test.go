package pool_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/pluginpool/pluginpool/host/backend"
	"github.com/pluginpool/pluginpool/host/pool"
	"github.com/pluginpool/pluginpool/internal/testkit"
)

// A task that fails, panics or cannot decode its input fails alone; the
// worker lives on and the other items succeed. sdk.Retry re-runs a task up
// to MaxAttempts.
func TestTaskErrors(t *testing.T) {
	cfg := fixture(t, "errors")
	cfg.Workers = 2
	p := start(t, cfg)
	before := pids(p)

	special := map[int]string{
		3:   `"fail"`,
		50:  `"panic"`,
		77:  `{bad json`,
		120: `"retry"`,
		400: `"retryforever"`,
	}
	items := testkit.Ints(1000)
	for i, s := range special {
		items[i] = []byte(s)
	}
	rs, err := mapAll(t, p, items)
	if err == nil || !strings.Contains(err.Error(), "4 of 1000 items failed") {
		t.Errorf("Map error = %v; want 4 of 1000 failed", err)
	}
	for i, r := range rs {
		if _, ok := special[i]; !ok && (r.Err != nil || string(r.Value) != strconv.Itoa(2*i)) {
			t.Errorf("item %d: got %q, %v", i, r.Value, r.Err)
		}
	}

	taskErr := func(i int, kind pool.TaskErrorKind, attempt int, want ...string) {
		t.Helper()
		var te *pool.TaskError
		if !errors.As(rs[i].Err, &te) || !errors.Is(rs[i].Err, pool.ErrTask) {
			t.Errorf("item %d: err = %v; want a *TaskError matching ErrTask", i, rs[i].Err)
			return
		}
		if te.Kind != kind || te.Attempt != attempt || te.Plugin != "errors" {
			t.Errorf("item %d: TaskError{Kind: %v, Attempt: %d, Plugin: %q}; want %v, attempt %d", i, te.Kind, te.Attempt, te.Plugin, kind, attempt)
		}
		for _, w := range want {
			if !strings.Contains(te.Message, w) {
				t.Errorf("item %d: message %q lacks %q", i, te.Message, w)
			}
		}
		if rs[i].Value != nil {
			t.Errorf("item %d: failed item has a value %q", i, rs[i].Value)
		}
	}
	taskErr(3, pool.KindError, 1, "failed on purpose")
	// A panic carries its value and the stack of the task.
	taskErr(50, pool.KindPanic, 1, "boom", "goroutine ", "fixture_test.go")
	taskErr(77, pool.KindDecode, 1, "{bad json")
	// Retried until MaxAttempts, then failed with the task's message.
	taskErr(400, pool.KindError, pool.DefaultMaxAttempts, "always transient")
	if n := counted(t, cfg, "retryforever"); n != pool.DefaultMaxAttempts {
		t.Errorf("retryforever ran %d times; want MaxAttempts = %d", n, pool.DefaultMaxAttempts)
	}
	if rs[120].Err != nil || string(rs[120].Value) != `"retried"` {
		t.Errorf("retry item: got %q, %v; want \"retried\"", rs[120].Value, rs[120].Err)
	}

	st := p.Stats()
	if st.Restarts != 0 || !slices.Equal(pids(p), before) {
		t.Errorf("task errors replaced a worker: pids %v -> %v, stats %+v", before, pids(p), st)
	}
	if st.Failed != 4 || st.Succeeded != 996 || st.Retries < 3 {
		t.Errorf("stats: %+v; want 4 failed, 996 succeeded, >= 3 retries", st)
	}

	// The pool goes on serving.
	rs, err = mapAll(t, p, testkit.Ints(100))
	if err != nil {
		t.Fatal(err)
	}
	testkit.CheckDoubled(t, rs)
}

// Every error the pool returns matches its sentinel with errors.Is, and
// the sentinels are distinct.
func TestErrorSentinels(t *testing.T) {
	cases := []struct {
		err  error
		want error
	}{
		{&pool.TaskError{Kind: pool.KindPanic}, pool.ErrTask},
		{&pool.CrashError{}, pool.ErrCrashed},
		{&pool.TimeoutError{}, pool.ErrTimeout},
		{&pool.TooLargeError{}, pool.ErrTooLarge},
		{&pool.DegradedError{}, pool.ErrDegraded},
		{&pool.StartError{Err: pool.ErrInit}, pool.ErrStart},
		{&pool.StartError{Err: pool.ErrInit}, pool.ErrInit},
	}
	for _, c := range cases {
		if !errors.Is(c.err, c.want) {
			t.Errorf("%T does not match %v", c.err, c.want)
		}
	}
	all := []error{pool.ErrInvalidConfig, pool.ErrClosed, pool.ErrStart, pool.ErrNotFound, pool.ErrChecksum,
		pool.ErrHandshake, pool.ErrInit, pool.ErrStartTimeout, pool.ErrDegraded, pool.ErrTask,
		pool.ErrCrashed, pool.ErrTimeout, pool.ErrTooLarge}
	for i, a := range all {
		for j, b := range all {
			if i != j && errors.Is(a, b) {
				t.Errorf("%v matches %v", a, b)
			}
		}
	}
}

func TestInvalidConfig(t *testing.T) {
	_, err := pool.Start(context.Background(), pool.Config{Workers: -1, MaxAttempts: -2, SHA256: "xyz"})
	if !errors.Is(err, pool.ErrInvalidConfig) {
		t.Fatalf("Start with a bad config: %v; want ErrInvalidConfig", err)
	}
	for _, want := range []string{"Path is required", "Workers must be >= 0", "MaxAttempts must be >= 0", "SHA256"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

// The errors every back-end shares are backend's, under the pool's names:
// a caller matching pool.ErrCrashed matches a cluster's crashes too.
func TestSharedErrors(t *testing.T) {
	for _, pair := range [][2]error{
		{pool.ErrClosed, backend.ErrClosed}, {pool.ErrStart, backend.ErrStart}, {pool.ErrNotFound, backend.ErrNotFound},
		{pool.ErrChecksum, backend.ErrChecksum}, {pool.ErrHandshake, backend.ErrHandshake}, {pool.ErrInit, backend.ErrInit},
		{pool.ErrStartTimeout, backend.ErrStartTimeout}, {pool.ErrDegraded, backend.ErrDegraded}, {pool.ErrTask, backend.ErrTask},
		{pool.ErrCrashed, backend.ErrCrashed}, {pool.ErrTimeout, backend.ErrTimeout}, {pool.ErrTooLarge, backend.ErrTooLarge},
		{pool.ErrNotRun, backend.ErrNotRun},
	} {
		if pair[0] != pair[1] {
			t.Errorf("pool's %v is not backend's", pair[0])
		}
	}
	for _, err := range []error{&pool.CrashError{}, &pool.TimeoutError{}, &pool.StartError{Err: pool.ErrInit}, &pool.DegradedError{}} {
		if !errors.Is(err, backend.ErrCrashed) && !errors.Is(err, backend.ErrTimeout) && !errors.Is(err, backend.ErrStart) && !errors.Is(err, backend.ErrDegraded) {
			t.Errorf("%T matches none of backend's sentinels", err)
		}
	}
}
