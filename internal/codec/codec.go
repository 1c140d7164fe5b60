// Package codec is the JSON codec both ends share: the SDK decodes a task's
// input and encodes its result with it, and the host's typed callers
// (pool.Typed) encode items and decode results with it. Values of the
// common scalar types (int, int64, float64, string, bool, json.Number,
// json.RawMessage) skip encoding/json's reflection; everything else goes
// through encoding/json, and the fast paths give exactly what it gives
// (the tests and fuzz targets compare them).
package codec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/pluginpool/pluginpool/internal/quote"
)

// Decode decodes one JSON value into v. Common scalar types skip
// encoding/json's reflection: for trivial tasks the codec is most of the
// plugin's per-item cost. A failure is a *DecodeError.
//
// A string or json.Number decoded on a fast path shares data's memory
// rather than copying it: data must not change afterwards. (Both ends hand
// it buffers nothing writes to again: a request's data in the SDK, a
// result's value on the host.)
func Decode[T any](data []byte, v *T) error {
	switch p := any(v).(type) {
	case *int:
		if n, ok := parseInt(data); ok && n == int64(int(n)) {
			*p = int(n)
			return nil
		}
	case *int64:
		if n, ok := parseInt(data); ok {
			*p = n
			return nil
		}
	case *float64:
		if isNumber(data) {
			f, err := strconv.ParseFloat(string(data), 64)
			if err == nil {
				*p = f
				return nil
			}
		}
	case *json.Number:
		if isNumber(data) {
			*p = json.Number(aliasString(data))
			return nil
		}
	case *string:
		if s, ok := plainString(data); ok {
			*p = s
			return nil
		}
	case *bool:
		switch string(data) {
		case "true":
			*p = true
			return nil
		case "false":
			*p = false
			return nil
		}
	case *json.RawMessage:
		if json.Valid(data) {
			// json.Unmarshal hands RawMessage the value without the
			// whitespace around it.
			*p = append((*p)[:0], bytes.Trim(data, " \t\r\n")...)
			return nil
		}
	case json.Unmarshaler:
		// The type decodes itself: skip encoding/json's scan of the input.
		// It must reject what is not valid for it.
		if err := p.UnmarshalJSON(trimSpace(data)); err != nil {
			return NewDecodeError(data, v, err)
		}
		return nil
	}
	return decodeSlow(data, v)
}

// decodeSlow decodes with encoding/json into a copy of *v. Passing v itself
// to json.Unmarshal would make it escape, and every caller's fast path would
// then pay a heap allocation per item (measured: 1 alloc/op for an int).
func decodeSlow[T any](data []byte, v *T) error {
	p := new(T)
	*p = *v
	if err := json.Unmarshal(data, p); err != nil {
		return NewDecodeError(data, p, err)
	}
	*v = *p
	return nil
}

// Appender is implemented by types that encode themselves to JSON by
// appending to a buffer, with no allocation (sdk.JSONAppender is the same
// interface). Append calls it instead of encoding/json; pair it with
// json.Unmarshaler on the pointer type, which Decode calls directly as
// well. Measured on the double plugin: a json.Number result (a string
// allocated per item) cost ~30% of the plugin's CPU.
type Appender interface {
	// AppendJSON appends the value's JSON encoding to b.
	AppendJSON(b []byte) ([]byte, error)
}

// Append appends the JSON encoding of *v to out. On failure it returns out
// as it was, and the error.
func Append[T any](out []byte, v *T) ([]byte, error) {
	switch p := any(v).(type) {
	case *int:
		return strconv.AppendInt(out, int64(*p), 10), nil
	case *int64:
		return strconv.AppendInt(out, *p, 10), nil
	case *float64:
		return appendFloat(out, *p)
	case *json.Number:
		if isNumber([]byte(*p)) {
			return append(out, *p...), nil
		}
	case *string:
		if isPlain(*p) {
			out = append(out, '"')
			out = append(out, *p...)
			return append(out, '"'), nil
		}
	case *bool:
		return strconv.AppendBool(out, *p), nil
	case *json.RawMessage:
		if len(*p) == 0 {
			return append(out, "null"...), nil
		}
	case Appender:
		return p.AppendJSON(out)
	}
	return appendSlow(out, v)
}

// appendSlow encodes with encoding/json, from a copy of *v so that v does
// not escape (see decodeSlow).
func appendSlow[T any](out []byte, v *T) ([]byte, error) {
	p := new(T)
	*p = *v
	b, err := json.Marshal(p)
	if err != nil {
		return out, err
	}
	return append(out, b...), nil
}

// appendFloat formats like encoding/json does.
func appendFloat(out []byte, f float64) ([]byte, error) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return out, errors.New(strconv.FormatFloat(f, 'g', -1, 64) + " is not a JSON number")
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	out = strconv.AppendFloat(out, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9, as encoding/json does
		n := len(out)
		if n >= 4 && out[n-4] == 'e' && out[n-3] == '-' && out[n-2] == '0' {
			out[n-2] = out[n-1]
			out = out[:n-1]
		}
	}
	return out, nil
}

// parseInt parses a JSON integer without allocating.
func parseInt(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	neg := b[0] == '-'
	if neg {
		b = b[1:]
		if len(b) == 0 {
			return 0, false
		}
	}
	if b[0] == '0' && len(b) > 1 {
		return 0, false
	}
	var n uint64 // 19 digits always fit a uint64, not always an int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	if n > math.MaxInt64 {
		return 0, false // encoding/json reports the overflow
	}
	if neg {
		return -int64(n), true
	}
	return int64(n), true
}

// isNumber reports whether b is exactly one JSON number.
func isNumber(b []byte) bool {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		start := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == start {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		start := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == start {
			return false
		}
	}
	return i == len(b)
}

// plainString decodes a JSON string that needs no unescaping.
func plainString(b []byte) (string, bool) {
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return "", false
	}
	s := b[1 : len(b)-1]
	for _, c := range s {
		if c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
			return "", false
		}
	}
	return aliasString(s), true
}

// aliasString returns b's bytes as a string without copying. Decode's
// callers pass buffers nothing writes to again (see Decode), so a string
// aliasing one stays valid and immutable for as long as it is kept.
func aliasString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// isPlain reports whether s encodes to JSON as itself between quotes.
// encoding/json also escapes <, > and & for HTML safety; keep that.
func isPlain(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' || c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// trimSpace trims JSON white space; bytes.Trim built a set per call, which
// showed in a plugin's profile.
func trimSpace(b []byte) []byte {
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// DecodeError reports a value that could not be decoded into a Go type.
// The SDK reports it as a task's decode failure (sdk.DecodeError is this
// type); the host's typed callers wrap it in a *pool.CodecError.
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

// NewDecodeError builds the *DecodeError of in, which failed with err to
// decode into v (a pointer), rewording encoding/json's messages into ones
// that name what was wanted and what came.
func NewDecodeError(in []byte, v any, err error) error {
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
