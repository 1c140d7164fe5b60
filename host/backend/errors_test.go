package backend_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/pluginpool/pluginpool/host/backend"
)

// Each typed error matches its sentinel and no other, so callers can tell
// failures apart with errors.Is whatever the back-end.
func TestErrorsMatchTheirSentinel(t *testing.T) {
	degraded := fmt.Errorf("%w: 11 restarts", backend.ErrDegraded)
	sentinels := []error{
		backend.ErrClosed, backend.ErrStart, backend.ErrNotFound, backend.ErrChecksum, backend.ErrHandshake,
		backend.ErrInit, backend.ErrStartTimeout, backend.ErrDegraded, backend.ErrTask, backend.ErrCrashed,
		backend.ErrTimeout, backend.ErrTooLarge, backend.ErrNotRun,
	}
	for _, tc := range []struct {
		err  error
		want []error
	}{
		{&backend.TaskError{Plugin: "p", Kind: backend.KindError, Message: "no"}, []error{backend.ErrTask}},
		{&backend.TooLargeError{Size: 10, Limit: 5}, []error{backend.ErrTooLarge}},
		{&backend.NotRunError{Plugin: "p", Cause: degraded}, []error{backend.ErrNotRun, backend.ErrDegraded}},
	} {
		for _, s := range sentinels {
			want := false
			for _, w := range tc.want {
				want = want || w == s
			}
			if got := errors.Is(tc.err, s); got != want {
				t.Errorf("errors.Is(%T, %v) = %v, want %v", tc.err, s, got, want)
			}
		}
	}
}

func TestErrorMessages(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&backend.TaskError{Plugin: "double", Kind: backend.KindError, Message: "no 3"}, "double: no 3"},
		{&backend.TaskError{Plugin: "double", Kind: backend.KindPanic, Message: "panic: boom"}, "double: task panicked: boom"},
		{&backend.TaskError{Plugin: "double", Kind: backend.KindDecode, Message: "want a number"}, "double: bad input: want a number"},
		{&backend.TaskError{Plugin: "double", Kind: backend.KindError, Message: "\x1b[2J\xff"}, `double: \x1b[2J\xff`},
		{&backend.TooLargeError{Size: 100, Limit: 16}, "item is 100 bytes, over the 16-byte limit (max_item_bytes)"},
		{&backend.NotRunError{Plugin: "crashy", Cause: backend.ErrDegraded}, "crashy: not run: the pool degraded (the degraded error says why)"},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("%T: %q, want %q", tc.err, got, tc.want)
		}
	}
}

func TestFirstError(t *testing.T) {
	task := &backend.TaskError{Plugin: "p", Kind: backend.KindError, Message: "no"}
	notRun := &backend.NotRunError{Plugin: "p", Cause: fmt.Errorf("%w: why", backend.ErrDegraded)}
	ok := backend.Result{Value: []byte("1")}
	if err := backend.FirstError([]backend.Result{ok, ok}); err != nil {
		t.Errorf("all ok: %v", err)
	}
	err := backend.FirstError([]backend.Result{ok, {Err: task}, {Err: context.Canceled}})
	if !errors.Is(err, backend.ErrTask) || !strings.HasPrefix(err.Error(), "2 of 3 items failed; the first, item 1: p: no") {
		t.Errorf("failed: %v", err)
	}
	err = backend.FirstError([]backend.Result{ok, {Err: notRun}, {Err: notRun}})
	if !errors.Is(err, backend.ErrNotRun) || !errors.Is(err, backend.ErrDegraded) || err.Error() != "2 of 3 items not run, from item 1: pool degraded: why" {
		t.Errorf("not run: %v", err)
	}
}

// A Tally fed the failed items one at a time says what FirstError says of
// the whole slice: pool.Typed's Map words its error with it.
func TestTallyIsFirstError(t *testing.T) {
	task := &backend.TaskError{Plugin: "p", Kind: backend.KindError, Message: "no"}
	notRun := &backend.NotRunError{Plugin: "p", Cause: fmt.Errorf("%w: why", backend.ErrDegraded)}
	ok := backend.Result{Value: []byte("1")}
	for _, rs := range [][]backend.Result{
		{ok, ok},
		{ok, {Err: task}, {Err: context.Canceled}},
		{ok, {Err: notRun}, {Err: notRun}},
		{{Err: notRun}, {Err: task}, ok, {Err: notRun}, {Err: context.Canceled}},
	} {
		tally := backend.Tally{Items: len(rs)}
		for i, r := range rs {
			if r.Err != nil {
				tally.Add(i, r.Err)
			}
		}
		want, got := backend.FirstError(rs), tally.Err()
		if (want == nil) != (got == nil) || want != nil && want.Error() != got.Error() {
			t.Errorf("Tally: %v; FirstError: %v", got, want)
		}
		for _, target := range []error{backend.ErrTask, backend.ErrNotRun, backend.ErrDegraded, context.Canceled} {
			if errors.Is(got, target) != errors.Is(want, target) {
				t.Errorf("%v: errors.Is(%v) differs from FirstError's", got, target)
			}
		}
	}
}
