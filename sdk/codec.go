package sdk

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"unicode/utf8"
	"unsafe"

	"github.com/pluginpool/pluginpool/internal/jsonv"
)

// decodeJSON decodes one JSON value into v. Common scalar types skip
// encoding/json's reflection: for trivial tasks the codec is most of the
// plugin's per-item cost.
func decodeJSON[T any](data []byte, v *T) error {
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
		if jsonv.IsNumber(data) {
			f, err := strconv.ParseFloat(string(data), 64)
			if err == nil {
				*p = f
				return nil
			}
		}
	case *json.Number:
		if jsonv.IsNumber(data) {
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
			return newDecodeError(data, v, err)
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
		return newDecodeError(data, p, err)
	}
	*v = *p
	return nil
}

// JSONAppender is implemented by result types that encode themselves to
// JSON by appending to a buffer, with no allocation. The SDK calls it
// instead of encoding/json; pair it with json.Unmarshaler on the pointer
// type for inputs, which the SDK calls directly as well. Measured on the
// double plugin: a json.Number result (a string allocated per item) cost
// ~30% of the plugin's CPU.
type JSONAppender interface {
	// AppendJSON appends the value's JSON encoding to b.
	AppendJSON(b []byte) ([]byte, error)
}

// appendJSON appends the JSON encoding of *v to out.
func appendJSON[T any](out []byte, v *T) ([]byte, error) {
	switch p := any(v).(type) {
	case *int:
		return strconv.AppendInt(out, int64(*p), 10), nil
	case *int64:
		return strconv.AppendInt(out, *p, 10), nil
	case *float64:
		return appendFloat(out, *p)
	case *json.Number:
		if jsonv.IsNumber([]byte(*p)) {
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
	case JSONAppender:
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
		return out, errors.New("result is not a JSON number: " + strconv.FormatFloat(f, 'g', -1, 64))
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

// aliasString returns b's bytes as a string without copying. Items are
// slices of a request's data, which the SDK never writes to or reuses, so a
// string aliasing it stays valid and immutable for as long as the task
// keeps it.
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
