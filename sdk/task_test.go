package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

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

func TestDecodeErrorMessages(t *testing.T) {
	type point struct{ X int }
	long := `"` + strings.Repeat("a", 100) + `"`
	huge := strings.Repeat("7", 20_000_000) // a 20 MB number: quoted by its first 64 bytes
	tests := []struct {
		name string
		run  func() error
		want string
	}{
		{"number from string", func() error { var n json.Number; return decodeJSON([]byte(`"x"`), &n) },
			`cannot decode input "x" as json.Number: want a number, got a JSON string`},
		{"number from bool", func() error { var n json.Number; return decodeJSON([]byte(`true`), &n) },
			`cannot decode input true as json.Number: want a number, got a JSON bool`},
		{"number from array", func() error { var n json.Number; return decodeJSON([]byte(` [1]`), &n) },
			`cannot decode input  [1] as json.Number: want a number, got a JSON array`},
		{"int from string", func() error { var n int; return decodeJSON([]byte(`"x"`), &n) },
			`cannot decode input "x" as int: want int, got a JSON string`},
		{"int from float", func() error { var n int; return decodeJSON([]byte(`1.5`), &n) },
			`cannot decode input 1.5 as int: want int, got a JSON number 1.5`},
		{"int overflow", func() error { var n int64; return decodeJSON([]byte(`9223372036854775808`), &n) },
			`cannot decode input 9223372036854775808 as int64: want int64, got a JSON number 9223372036854775808`},
		{"float from string", func() error { var f float64; return decodeJSON([]byte(`"1"`), &f) },
			`cannot decode input "1" as float64: want float64, got a JSON string`},
		{"string from number", func() error { var s string; return decodeJSON([]byte(`1`), &s) },
			`cannot decode input 1 as string: want string, got a JSON number`},
		{"struct field", func() error { var p point; return decodeJSON([]byte(`{"X":"1"}`), &p) },
			`cannot decode input {"X":"1"} as sdk.point: field X: want int, got a JSON string`},
		{"syntax", func() error { var n int; return decodeJSON([]byte(`x`), &n) },
			`cannot decode input x as int: invalid character 'x' looking for beginning of value`},
		{"long input", func() error { var n int; return decodeJSON([]byte(long), &n) },
			`cannot decode input "` + strings.Repeat("a", 63) + `… (102 bytes) as int: want int, got a JSON string`},
		{"control bytes", func() error { var n int; return decodeJSON([]byte("\"\xff\x1b[2J\""), &n) },
			`cannot decode input "\xff\x1b[2J" as int: invalid character '\x1b' in string literal`},
		{"invalid UTF-8", func() error { var n int; return decodeJSON([]byte("\"\xff\""), &n) },
			`cannot decode input "\xff" as int: want int, got a JSON string`},
		{"huge number", func() error { var n int; return decodeJSON([]byte(huge), &n) },
			`cannot decode input ` + huge[:64] + `… (20000000 bytes) as int: want int, got a JSON number ` + huge[:64] + `… (20000000 bytes)`},
		{"huge float", func() error { var f float64; return decodeJSON([]byte("1"+strings.Repeat("0", 400)), &f) },
			`cannot decode input 1` + strings.Repeat("0", 63) + `… (401 bytes) as float64: want float64, got a JSON number 1` + strings.Repeat("0", 63) + `… (401 bytes)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.run()
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %v (%T) is not a *DecodeError", err, err)
			}
			if err.Error() != tt.want {
				t.Errorf("error\n got %s\nwant %s", err, tt.want)
			}
			if len(de.Input) > 64 {
				t.Errorf("Input is %d bytes, want at most 64", len(de.Input))
			}
			if de.Unwrap() == nil {
				t.Error("Unwrap() = nil")
			}
		})
	}
}

// DecodeError.Input must not alias the batch buffer: the runner reuses it.
func TestDecodeErrorCopiesInput(t *testing.T) {
	in := []byte(`"x"`)
	var n int
	err := decodeJSON(in, &n)
	in[1] = 'y'
	if !strings.Contains(err.Error(), `"x"`) {
		t.Errorf("error %v changed with the input buffer", err)
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
	decodeErr := decodeJSON([]byte("x"), &n)
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
