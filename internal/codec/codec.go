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
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/pluginpool/pluginpool/internal/jsonv"
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
		if decodeInt(data, p) {
			return nil
		}
	case *int64:
		if decodeInt64(data, p) {
			return nil
		}
	case *float64:
		if decodeFloat(data, p) {
			return nil
		}
	case *json.Number:
		if decodeNumber(data, p) {
			return nil
		}
	case *string:
		if decodeString(data, p) {
			return nil
		}
	case *bool:
		if decodeBool(data, p) {
			return nil
		}
	case *json.RawMessage:
		if decodeRaw(data, p) {
			return nil
		}
	case json.Unmarshaler:
		return DecodeSelf(p, data, v)
	}
	return decodeSlow(data, v)
}

// Decoder returns a function that decodes one JSON value into *v, as
// Decode(data, v) does. It picks v's path once rather than on every call,
// which is what a caller decoding many values into the same variable
// wants: the type switch and, for a json.Unmarshaler, the interface
// conversion were a tenth of a trivial task's cost in the plugin.
func Decoder[T any](v *T) func(data []byte) error {
	fast := func(f func([]byte) bool) func([]byte) error {
		return func(data []byte) error {
			if f(data) {
				return nil
			}
			return decodeSlow(data, v)
		}
	}
	switch p := any(v).(type) {
	case *int:
		return func(data []byte) error {
			if n, ok := ParseInt(data); ok && n == int64(int(n)) {
				*p = int(n)
				return nil
			}
			return decodeSlow(data, v)
		}
	case *int64:
		return func(data []byte) error {
			if n, ok := ParseInt(data); ok {
				*p = n
				return nil
			}
			return decodeSlow(data, v)
		}
	case *float64:
		return fast(func(data []byte) bool { return decodeFloat(data, p) })
	case *json.Number:
		return fast(func(data []byte) bool { return decodeNumber(data, p) })
	case *string:
		return fast(func(data []byte) bool { return decodeString(data, p) })
	case *bool:
		return fast(func(data []byte) bool { return decodeBool(data, p) })
	case *json.RawMessage:
		return fast(func(data []byte) bool { return decodeRaw(data, p) })
	case json.Unmarshaler:
		return func(data []byte) error { return DecodeSelf(p, data, v) }
	}
	return func(data []byte) error { return decodeSlow(data, v) }
}

// Aliases reports whether a value Decode or Decoder puts in a *T may
// share the data's memory: a string or a json.Number, on their fast paths.
// Every other type copies what it keeps (encoding/json copies, and a
// json.Unmarshaler must), so a caller may reuse the data's buffer once
// the value was decoded.
func Aliases[T any]() bool {
	switch any((*T)(nil)).(type) {
	case *string, *json.Number:
		return true
	}
	return false
}

func decodeInt(data []byte, p *int) bool {
	n, ok := ParseInt(data)
	if ok && n == int64(int(n)) {
		*p = int(n)
	}
	return ok && n == int64(int(n))
}

func decodeInt64(data []byte, p *int64) bool {
	n, ok := ParseInt(data)
	if ok {
		*p = n
	}
	return ok
}

func decodeFloat(data []byte, p *float64) bool {
	if !jsonv.IsNumber(data) {
		return false
	}
	f, err := strconv.ParseFloat(aliasString(data), 64)
	if err != nil {
		return false
	}
	*p = f
	return true
}

func decodeNumber(data []byte, p *json.Number) bool {
	if !jsonv.IsNumber(data) {
		return false
	}
	*p = json.Number(aliasString(data))
	return true
}

func decodeString(data []byte, p *string) bool {
	s, ok := plainString(data)
	if ok {
		*p = s
	}
	return ok
}

func decodeBool(data []byte, p *bool) bool {
	switch string(data) {
	case "true":
		*p = true
		return true
	case "false":
		*p = false
		return true
	}
	return false
}

func decodeRaw(data []byte, p *json.RawMessage) bool {
	if !json.Valid(data) {
		return false
	}
	// json.Unmarshal hands RawMessage the value without the whitespace
	// around it.
	*p = append((*p)[:0], bytes.Trim(data, " \t\r\n")...)
	return true
}

// DecodeSelf has a type that decodes itself do so, without the JSON
// white space around data, skipping encoding/json's scan of the input: it
// must reject what is not valid for it. u is v as a json.Unmarshaler. A
// failure is a *DecodeError. (The SDK calls it for a task's input that
// decodes itself, without Decoder's function around it.)
func DecodeSelf(u json.Unmarshaler, data []byte, v any) error {
	if len(data) == 0 || data[0] <= ' ' || data[len(data)-1] <= ' ' {
		data = trimSpace(data)
	}
	if err := u.UnmarshalJSON(data); err != nil {
		return NewDecodeError(data, v, err)
	}
	return nil
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
		return AppendInt(out, int64(*p)), nil
	case *int64:
		return AppendInt(out, *p), nil
	case *float64:
		return appendFloat(out, *p)
	case *json.Number:
		if jsonv.IsNumber([]byte(*p)) {
			return append(out, *p...), nil
		}
	case *string:
		if isPlain(*p) {
			return appendPlain(out, *p), nil
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

// Encoder returns a function that appends the JSON encoding of *v to out,
// as Append(out, v) does, having picked v's path once (see Decoder).
func Encoder[T any](v *T) func(out []byte) ([]byte, error) {
	switch p := any(v).(type) {
	case *int:
		return func(out []byte) ([]byte, error) { return AppendInt(out, int64(*p)), nil }
	case *int64:
		return func(out []byte) ([]byte, error) { return AppendInt(out, *p), nil }
	case *float64:
		return func(out []byte) ([]byte, error) { return appendFloat(out, *p) }
	case *string:
		return func(out []byte) ([]byte, error) {
			if isPlain(*p) {
				return appendPlain(out, *p), nil
			}
			return appendSlow(out, v)
		}
	case *bool:
		return func(out []byte) ([]byte, error) { return strconv.AppendBool(out, *p), nil }
	case Appender:
		return p.AppendJSON
	}
	// json.Number and json.RawMessage are rare: Append's checks suffice.
	return func(out []byte) ([]byte, error) { return Append(out, v) }
}

func appendPlain(out []byte, s string) []byte {
	out = append(out, '"')
	out = append(out, s...)
	return append(out, '"')
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

// ParseInt parses a JSON integer that fits an int64, without allocating:
// an optional '-', then digits without leading zeros. It reports false for
// anything else (a fraction, an exponent, too many digits), which callers
// hand to a slower path. Eight digits at a time (parse8): ~30 instructions
// for a 7-digit number, where a loop over the digits took ~100.
func ParseInt(b []byte) (int64, bool) {
	if k := len(b); k >= 4 && k <= 8 && b[0] != '-' && b[0] != '0' {
		// 4 to 8 digits, the common item: no sign to strip, no overflow
		// to check, and parseDigits48 written out here, a call less.
		lo := uint64(binary.LittleEndian.Uint32(b))
		hi := uint64(binary.LittleEndian.Uint32(b[k-4:]))
		w := lo | hi<<(8*(k-4)&63)
		n, ok := parse8(w<<(8*(8-k)&63) | 0x3030303030303030>>(8*(k-1)&63)>>8)
		return int64(n), ok
	}
	return parseInt(b)
}

// parseInt is ParseInt past its common case.
func parseInt(b []byte) (int64, bool) {
	d := b
	neg := len(d) > 0 && d[0] == '-'
	if neg {
		d = d[1:]
	}
	if len(d) == 0 || len(d) > 19 || d[0] == '0' && len(d) > 1 {
		return 0, false
	}
	var n uint64 // 19 digits always fit a uint64, not always an int64
	if k := len(d) - 8; k > 0 {
		head, ok := parseDigits(d[:k])
		if !ok {
			return 0, false
		}
		n, d = head*1e8, d[len(d)-8:]
	}
	tail, ok := parseDigits(d)
	if !ok {
		return 0, false
	}
	n += tail
	if n > math.MaxInt64 {
		return 0, false // encoding/json reports the overflow
	}
	if neg {
		return -int64(n), true
	}
	return int64(n), true
}

// parseDigits returns the value of d, 1 to 11 ASCII digits, or false if
// one is not a digit.
func parseDigits(d []byte) (uint64, bool) {
	k := len(d)
	if k < 4 || k > 8 {
		var n uint64
		for _, c := range d {
			c -= '0'
			if c > 9 {
				return 0, false
			}
			n = n*10 + uint64(c)
		}
		return n, true
	}
	return parseDigits48(d)
}

// parseDigits48 is parseDigits of 4 to 8 digits.
func parseDigits48(d []byte) (uint64, bool) {
	k := len(d)
	// Two 4-byte loads that may overlap (the bytes they share are the
	// same) put d's k bytes in the low end of w, first digit lowest; they
	// move to the top, and '0's fill the bottom: the 8 digits of the same
	// number.
	lo := uint64(binary.LittleEndian.Uint32(d))
	hi := uint64(binary.LittleEndian.Uint32(d[k-4:]))
	// (Shift counts masked to 63 spare the compiler's guard for counts
	// of 64 and more: they never are.)
	w := lo | hi<<(8*(k-4)&63)
	w = w<<(8*(8-k)&63) | 0x3030303030303030>>(8*(k-1)&63)>>8
	return parse8(w)
}

// parse8 returns the value of the 8 ASCII digits in w (the first in the
// lowest byte), or false if one is not a digit.
func parse8(w uint64) (uint64, bool) {
	const zeros = 0x3030303030303030
	const high = 0xF0F0F0F0F0F0F0F0
	// Every byte 0x30-0x39: its high nibble is 3, and adding 6 keeps it 3.
	if w&high != zeros || (w+0x0606060606060606)&high != zeros {
		return 0, false
	}
	w -= zeros
	w = (w*10 + w>>8) & 0x00FF00FF00FF00FF      // pairs of digits
	w = (w*100 + w>>16) & 0x0000FFFF0000FFFF    // fours
	return (w*10000 + w>>32) & 0xFFFFFFFF, true // eight
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
	if len(b) > 0 && b[0] > ' ' && b[len(b)-1] > ' ' {
		return b // the common case: JSON white space is all at or under ' '
	}
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

// AppendInt appends n in decimal to out, as strconv.AppendInt(out, n, 10)
// does. Numbers under 10^8, the common case, are formatted in one 8-byte
// word, two digits at a time from a table, and stored at once: ~50
// instructions for a 7-digit number, against strconv's ~190.
func AppendInt(out []byte, n int64) []byte {
	if u := uint64(n); u-100 < 1e8-100 {
		// 100 <= n < 10^8, the common case, with appendDigits8 written
		// out here, a call less.
		k := digits3to8(u)
		w := digitsWord(u) >> (8 * (8 - k) & 63)
		l := len(out)
		out = slices.Grow(out, 8)
		binary.LittleEndian.PutUint64(out[l:l+8], w)
		return out[:l+k]
	}
	return appendInt(out, n)
}

// appendInt is AppendInt past its common case.
func appendInt(out []byte, n int64) []byte {
	u := uint64(n)
	if n < 0 {
		out = append(out, '-')
		u = -u // two's complement: right for math.MinInt64 too
	}
	if u < 10 {
		return append(out, byte('0'+u))
	}
	if u < 100 {
		p := digitPairs[u]
		return append(out, byte(p), byte(p>>8))
	}
	if u >= 1e8 {
		// The digits above the last eight first, then those eight, leading
		// zeros and all.
		out = appendInt(out, int64(u/1e8))
		return appendDigits8(out, u%1e8, 8)
	}
	return appendDigits(out, u)
}

// appendDigits appends u (100 <= u < 10^8), 3 to 8 digits.
func appendDigits(out []byte, u uint64) []byte {
	return appendDigits8(out, u, digits3to8(u))
}

// digits3to8 returns how many digits u has, for 100 <= u < 10^8.
func digits3to8(u uint64) int {
	switch {
	case u < 1e4:
		return 3 + b2i(u >= 1e3)
	case u < 1e6:
		return 5 + b2i(u >= 1e5)
	}
	return 7 + b2i(u >= 1e7)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// appendDigits8 appends the last k of the eight decimal digits of u
// (u < 10^8, 1 <= k <= 8).
func appendDigits8(out []byte, u uint64, k int) []byte {
	w := digitsWord(u) >> (8 * (8 - k) & 63) // the leading digits not wanted are the low bytes
	l := len(out)
	out = slices.Grow(out, 8)
	binary.LittleEndian.PutUint64(out[l:l+8], w) // in capacity past the end, then cut
	return out[:l+k]
}

// digitsWord returns the eight decimal digits of u (u < 10^8) as ASCII,
// the first in the lowest byte.
func digitsWord(u uint64) uint64 {
	hi, lo := u/10000, u%10000
	return uint64(digitPairs[hi/100]) | uint64(digitPairs[hi%100])<<16 |
		uint64(digitPairs[lo/100])<<32 | uint64(digitPairs[lo%100])<<48
}

// digitPairs holds "00" to "99", each as the little-endian uint16 of its
// two bytes.
var digitPairs = func() (t [100]uint16) {
	for i := range t {
		t[i] = uint16('0'+i/10) | uint16('0'+i%10)<<8
	}
	return t
}()
