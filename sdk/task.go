package sdk

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/pluginpool/pluginpool/internal/codec"
)

// A Task runs one item: it decodes the item's bytes, does the work and
// appends the encoded result. Build one with Func, Sink or Raw.
type Task interface {
	// run appends the encoded result of in to out and returns the extended
	// buffer. Appending nothing means "no value" (see Sink).
	run(ctx context.Context, in, out []byte) ([]byte, error)
	// aliases reports whether what the task keeps of an input may share
	// its memory after run returned (a string or json.Number input,
	// decoded without a copy): then the runner must not reuse a request's
	// buffer for the next one.
	aliases() bool
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
	t := &funcTask[In, Out]{f: f, in: new(In), out: new(Out)}
	t.decode, t.encode = codec.Decoder(t.in), codec.Encoder(t.out)
	t.self, _ = any(t.in).(json.Unmarshaler)
	t.appender, _ = any(t.out).(codec.Appender)
	return t
}

// funcTask decodes into and encodes from values it keeps between items:
// a local would escape to the heap through the json.Unmarshaler and
// JSONAppender calls, one allocation per item. The runner runs one task
// at a time, so reuse is safe. Its decoder and encoder are bound to them
// once (codec.Decoder), not picked per item. A type that decodes or
// encodes itself is called directly, through self and appender: the
// codec's function around the method was one more call per item, of the
// ~10 a trivial task made (the double plugin's number).
type funcTask[In, Out any] struct {
	f        func(context.Context, In) (Out, error)
	in       *In
	out      *Out
	decode   func([]byte) error
	encode   func([]byte) ([]byte, error)
	self     json.Unmarshaler // in, when it decodes itself
	appender codec.Appender   // out, when it encodes itself
}

func (t *funcTask[In, Out]) aliases() bool { return codec.Aliases[In]() }

func (t *funcTask[In, Out]) run(ctx context.Context, in, out []byte) ([]byte, error) {
	var zero In
	*t.in = zero
	if t.self == nil {
		if err := t.decode(in); err != nil {
			return out, err
		}
	} else if err := codec.DecodeSelf(t.self, in, t.in); err != nil {
		return out, err
	}
	r, err := t.f(ctx, *t.in)
	if err != nil {
		return out, err
	}
	*t.out = r
	var res []byte
	if t.appender != nil {
		res, err = t.appender.AppendJSON(out)
	} else {
		res, err = t.encode(out)
	}
	if err != nil {
		return out, fmt.Errorf("cannot encode the result: %w", err)
	}
	return res, nil
}

// Sink adapts a function that returns no value, only an error: a task run
// for what it prints (see Printf) or for its side effects. The host writes
// no result line for it.
func Sink[In any](f func(ctx context.Context, in In) error) Task {
	t := &sinkTask[In]{f: f, in: new(In)}
	t.decode = codec.Decoder(t.in)
	return t
}

type sinkTask[In any] struct {
	f      func(context.Context, In) error
	in     *In // reused, as in funcTask
	decode func([]byte) error
}

func (t *sinkTask[In]) aliases() bool { return codec.Aliases[In]() }

func (t *sinkTask[In]) run(ctx context.Context, in, out []byte) ([]byte, error) {
	var zero In
	*t.in = zero
	if err := t.decode(in); err != nil {
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

// aliases: the input is only valid during the call (see Raw).
func (f rawTask) aliases() bool { return false }

func (f rawTask) run(ctx context.Context, in, out []byte) ([]byte, error) {
	r, err := f(ctx, in)
	if err != nil {
		return out, err
	}
	return append(out, r...), nil
}

// DecodeError reports an input that could not be decoded into the task's
// input type: the start of the input (at most 64 bytes, copied), its
// size, the Go type and the reason. The host reports it as that item's
// failure (pool.KindDecode). It is the codec's error type, which the host's
// typed callers share.
type DecodeError = codec.DecodeError

// JSONAppender is implemented by result types that encode themselves to
// JSON by appending to a buffer, with no allocation. The SDK calls it
// instead of encoding/json; pair it with json.Unmarshaler on the pointer
// type for inputs, which the SDK calls directly as well. As
// json.Unmarshaler says, UnmarshalJSON must copy what it keeps of its
// input: the SDK reuses the request's buffer for a later batch. Measured on the
// double plugin: a json.Number result (a string allocated per item) cost
// ~30% of the plugin's CPU.
type JSONAppender interface {
	// AppendJSON appends the value's JSON encoding to b.
	AppendJSON(b []byte) ([]byte, error)
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
