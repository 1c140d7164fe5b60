package sdk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/pluginpool/pluginpool/internal/quote"
)

// A Task runs one item: it decodes the item's bytes, does the work and
// appends the encoded result. Build one with Func, Sink or Raw.
type Task interface {
	// run appends the encoded result of in to out and returns the extended
	// buffer. Appending nothing means "no value" (see Sink).
	run(ctx context.Context, in, out []byte) ([]byte, error)
}

// Func adapts a typed function to a Task. Inputs are decoded from JSON into
// In and results encoded to JSON, with a fast path that skips reflection for
// numbers, strings, bools, json.Number and json.RawMessage. An input that
// does not decode into In fails that item alone with a decode error.
//
// Numbers decode as encoding/json decodes them. An integer type (int,
// int64, ...) takes only integers it can hold: 1.5, 1e3 or a number past
// its range is a decode error, never wrapped or rounded. json.Number and
// json.RawMessage keep a number's text exactly, whatever its size.
// float64, and the numbers inside an any, map[string]any or []any (which
// encoding/json makes float64), round to the nearest float64: 2^53+1
// becomes 2^53, a 30-digit integer keeps 17 digits. That is the author's
// choice of type; take json.Number where every digit matters (the double
// plugin doubles any JSON number exactly from its text).
func Func[In, Out any](f func(ctx context.Context, in In) (Out, error)) Task {
	return &funcTask[In, Out]{f: f, in: new(In), out: new(Out)}
}

// funcTask decodes into and encodes from values it keeps between items:
// a local would escape to the heap through the json.Unmarshaler and
// JSONAppender calls, one allocation per item. The runner runs one task
// at a time, so reuse is safe.
type funcTask[In, Out any] struct {
	f   func(context.Context, In) (Out, error)
	in  *In
	out *Out
}

func (t *funcTask[In, Out]) run(ctx context.Context, in, out []byte) ([]byte, error) {
	var zero In
	*t.in = zero
	if err := decodeJSON(in, t.in); err != nil {
		return out, err
	}
	r, err := t.f(ctx, *t.in)
	if err != nil {
		return out, err
	}
	*t.out = r
	return appendJSON(out, t.out)
}

// Sink adapts a function that returns no value, only an error: a task run
// for what it prints (see Printf) or for its side effects. The host writes
// no result line for it.
func Sink[In any](f func(ctx context.Context, in In) error) Task {
	return &sinkTask[In]{f: f, in: new(In)}
}

type sinkTask[In any] struct {
	f  func(context.Context, In) error
	in *In // reused, as in funcTask
}

func (t *sinkTask[In]) run(ctx context.Context, in, out []byte) ([]byte, error) {
	var zero In
	*t.in = zero
	if err := decodeJSON(in, t.in); err != nil {
		return out, err
	}
	return out, t.f(ctx, *t.in)
}

// Raw adapts a function over raw item bytes: no decoding, no encoding. The
// input slice is only valid during the call; the returned slice is copied.
// Returning an empty slice means "no value"; anything else must be one line
// of JSON (valid UTF-8, no line break): the host fails the item otherwise.
func Raw(f func(ctx context.Context, in []byte) ([]byte, error)) Task {
	return rawTask(f)
}

type rawTask func(context.Context, []byte) ([]byte, error)

func (f rawTask) run(ctx context.Context, in, out []byte) ([]byte, error) {
	r, err := f(ctx, in)
	if err != nil {
		return out, err
	}
	return append(out, r...), nil
}

// DecodeError reports an input that could not be decoded into the task's
// input type. The host reports it as that item's failure.
type DecodeError struct {
	// Input is the start of the offending input: at most its first 64
	// bytes, copied.
	Input []byte
	// Size is the whole input's length in bytes; 0 means len(Input).
	Size int
	Type string // the Go type it was decoded into
	Err  error
}

// Error quotes the input as every pluginpool message quotes an item: its
// first 64 bytes at most, control bytes and invalid UTF-8 escaped, and its
// size when it was cut ("cannot decode input "\xff" as int: ...").
func (e *DecodeError) Error() string {
	size := max(e.Size, len(e.Input))
	return fmt.Sprintf("cannot decode input %s as %s: %v", quote.Prefix(e.Input, size), e.Type, e.Err)
}

func (e *DecodeError) Unwrap() error { return e.Err }

func newDecodeError(in []byte, v any, err error) error {
	var ute *json.UnmarshalTypeError
	_, number := v.(*json.Number)
	switch {
	case errors.As(err, &ute):
		want := ute.Type.String()
		if number {
			want = "a number"
		}
		// encoding/json puts the whole literal of a number in Value
		// ("number 1e400"): a 20 MB number must not come back whole.
		got := ute.Value
		if lit, ok := strings.CutPrefix(got, "number "); ok {
			got = "number " + quote.Item([]byte(lit))
		}
		msg := fmt.Sprintf("want %s, got a JSON %s", want, got)
		if ute.Field != "" {
			msg = "field " + quote.Item([]byte(ute.Field)) + ": " + msg
		}
		err = errors.New(msg)
	case number && json.Valid(in) && bytes.TrimLeft(in, " \t\r\n")[0] == '"':
		// encoding/json says `invalid number literal, trying to unmarshal
		// "\"x\"" into Number`.
		err = errors.New("want a number, got a JSON string")
	}
	t := strings.TrimPrefix(fmt.Sprintf("%T", v), "*")
	t = strings.TrimPrefix(t, "main.") // a plugin's own type: its name says enough
	return &DecodeError{Input: bytes.Clone(in[:min(len(in), quote.ItemLimit)]), Size: len(in), Type: t, Err: err}
}

// retryError marks an error the plugin wants retried.
type retryError struct{ err error }

func (e *retryError) Error() string { return e.err.Error() }
func (e *retryError) Unwrap() error { return e.err }

// Retry wraps err to ask the host to run the task again (on any worker),
// up to the plugin's max_attempts. Use it for transient failures such as a
// timed-out network call; plain errors are final.
func Retry(err error) error {
	if err == nil {
		return nil
	}
	return &retryError{err}
}
