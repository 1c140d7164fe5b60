package sdk

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/pluginpool/pluginpool/internal/codec"
	workerpb "github.com/pluginpool/pluginpool/sdk/proto"
)

func TestFunc(t *testing.T) {
	double := Func(func(ctx context.Context, n int) (int, error) {
		if n < 0 {
			return 0, errors.New("negative")
		}
		return 2 * n, nil
	})
	ctx := &taskCtx{parent: context.Background()}
	out, err := double.run(ctx, []byte("21"), []byte("prefix:"))
	if err != nil || string(out) != "prefix:42" {
		t.Errorf("run(21) = %q, %v; want prefix:42", out, err)
	}
	out, err = double.run(ctx, []byte("-1"), []byte("prefix:"))
	if err == nil || err.Error() != "negative" || string(out) != "prefix:" {
		t.Errorf("run(-1) = %q, %v; want the task's error and the buffer unchanged", out, err)
	}
	out, err = double.run(ctx, []byte(`"x"`), []byte("prefix:"))
	var de *DecodeError
	if !errors.As(err, &de) || string(out) != "prefix:" {
		t.Errorf(`run("x") = %q, %v; want a *DecodeError and the buffer unchanged`, out, err)
	}
}

func TestFuncStruct(t *testing.T) {
	type point struct{ X, Y int }
	swap := Func(func(_ context.Context, p point) (point, error) { return point{p.Y, p.X}, nil })
	out, err := swap.run(context.Background(), []byte(`{"X":1,"Y":2}`), nil)
	if err != nil || string(out) != `{"X":2,"Y":1}` {
		t.Errorf("run = %q, %v", out, err)
	}
}

func TestSink(t *testing.T) {
	var got []string
	sink := Sink(func(_ context.Context, s string) error {
		got = append(got, s)
		if s == "bad" {
			return errors.New("bad input")
		}
		return nil
	})
	out, err := sink.run(context.Background(), []byte(`"a"`), []byte("p"))
	if err != nil || string(out) != "p" {
		t.Errorf(`run("a") = %q, %v; want no value`, out, err)
	}
	if _, err := sink.run(context.Background(), []byte(`"bad"`), nil); err == nil || err.Error() != "bad input" {
		t.Errorf(`run("bad") error = %v, want "bad input"`, err)
	}
	_, err = sink.run(context.Background(), []byte(`1`), nil)
	var de *DecodeError
	if !errors.As(err, &de) {
		t.Errorf("run(1) error = %v, want a *DecodeError", err)
	}
	if strings.Join(got, ",") != "a,bad" {
		t.Errorf("sink saw %q, want a and bad (a decode failure never calls it)", got)
	}
}

func TestRaw(t *testing.T) {
	upper := Raw(func(_ context.Context, in []byte) ([]byte, error) {
		if len(in) == 0 {
			return nil, errors.New("empty")
		}
		return []byte(strings.ToUpper(string(in))), nil
	})
	out, err := upper.run(context.Background(), []byte(`"abc"`), []byte("p"))
	if err != nil || string(out) != `p"ABC"` {
		t.Errorf("run = %q, %v", out, err)
	}
	out, err = upper.run(context.Background(), nil, []byte("p"))
	if err == nil || string(out) != "p" {
		t.Errorf("run(empty) = %q, %v; want an error and the buffer unchanged", out, err)
	}
}

func TestRetry(t *testing.T) {
	if Retry(nil) != nil {
		t.Error("Retry(nil) != nil")
	}
	cause := errors.New("connection reset")
	err := Retry(cause)
	if !errors.Is(err, cause) || err.Error() != "connection reset" {
		t.Errorf("Retry(cause) = %v; want it to wrap cause and keep its message", err)
	}
	var re *retryError
	if !errors.As(err, &re) {
		t.Error("Retry's error is not a *retryError")
	}
	tc := &taskCtx{parent: context.Background()}
	if k := errorKind(tc, err); k != workerpb.ErrorKind_ERROR_KIND_RETRY {
		t.Errorf("errorKind(Retry(err)) = %v", k)
	}
	if k := errorKind(tc, Retry(context.Canceled)); k != workerpb.ErrorKind_ERROR_KIND_RETRY {
		t.Errorf("errorKind(Retry(context.Canceled)) = %v: an explicit retry wins", k)
	}
}

func TestCallRecoversPanic(t *testing.T) {
	r := &runner{s: &server{plugin: Plugin{Task: Func(func(_ context.Context, n int) (int, error) {
		if n == 0 {
			var m map[string]int
			m["x"] = 1 // a runtime panic, not only panic(value)
		}
		if n < 0 {
			panic("negative")
		}
		return n, nil
	})}, logger: hclog.NewNullLogger()}}
	tc := &taskCtx{parent: context.Background()}
	for _, tt := range []struct{ in, want string }{
		{"-1", "panic: negative"},
		{"0", "panic: assignment to entry in nil map"},
	} {
		out, err := r.call(tc, []byte(tt.in), []byte("p"))
		if string(out) != "p" {
			t.Errorf("call(%s) left %q in the buffer", tt.in, out)
		}
		var pe *panicError
		if !errors.As(err, &pe) {
			t.Fatalf("call(%s) error = %v, want a *panicError", tt.in, err)
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, tt.want) || !strings.Contains(msg, "goroutine ") || !strings.Contains(msg, "task_test.go") {
			t.Errorf("call(%s) error = %q, want %q and a stack through the task", tt.in, msg, tt.want)
		}
		if k := errorKind(tc, err); k != workerpb.ErrorKind_ERROR_KIND_PANIC {
			t.Errorf("errorKind = %v, want PANIC", k)
		}
	}
	out, err := r.call(tc, []byte("3"), nil)
	if err != nil || string(out) != "3" {
		t.Errorf("call(3) = %q, %v after panics", out, err)
	}
}

func TestErrorKind(t *testing.T) {
	bg := context.Background()
	var n int
	decodeErr := codec.Decode([]byte("x"), &n)
	timedOut := &taskCtx{parent: bg}
	timedOut.cancel(errTimeout)
	cancelled := &taskCtx{parent: bg}
	cancelled.cancel(context.Canceled)
	tests := []struct {
		tc   *taskCtx
		err  error
		want workerpb.ErrorKind
	}{
		{&taskCtx{parent: bg}, errors.New("x"), workerpb.ErrorKind_ERROR_KIND_TASK},
		{&taskCtx{parent: bg}, decodeErr, workerpb.ErrorKind_ERROR_KIND_DECODE},
		{&taskCtx{parent: bg}, &panicError{value: 1}, workerpb.ErrorKind_ERROR_KIND_PANIC},
		{&taskCtx{parent: bg}, context.Canceled, workerpb.ErrorKind_ERROR_KIND_CANCELED},
		{timedOut, timedOut.Err(), workerpb.ErrorKind_ERROR_KIND_TIMEOUT},
		{timedOut, errors.New("gave up"), workerpb.ErrorKind_ERROR_KIND_TIMEOUT},
		{cancelled, errors.New("gave up"), workerpb.ErrorKind_ERROR_KIND_CANCELED},
	}
	for i, tt := range tests {
		if got := errorKind(tt.tc, tt.err); got != tt.want {
			t.Errorf("%d: errorKind(%v) = %v, want %v", i, tt.err, got, tt.want)
		}
	}
}
