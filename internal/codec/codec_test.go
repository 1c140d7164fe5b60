package codec

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/pluginpool/pluginpool/internal/quote"
)

// The codec's fast paths must be invisible: for every input, decodeJSON and
// appendJSON give what encoding/json gives (value, or failure). These tests
// and the fuzz targets below compare them on the types with a fast path.

var decodeInputs = []string{
	// integers
	"0", "-0", "1", "-1", "42", "007", "01", "-", "--1", "+1", "1_000",
	"9223372036854775807", "-9223372036854775808",
	"9223372036854775808", "-9223372036854775809",
	"9999999999999999999", "-9999999999999999999", "10000000000000000000",
	"18446744073709551615", "18446744073709551616", "99999999999999999999",
	"2147483647", "2147483648", "-2147483649",
	// floats
	"1.5", "-1.5", "1.", ".5", "1e3", "1E3", "1e+3", "1e-3", "1e", "1e+", "0.0", "-0.0",
	"1e308", "1e309", "-1e309", "4.9e-324", "1e-400", "0x10", "Infinity", "NaN",
	"123456789012345678901234567890", "1.7976931348623157e308",
	// whitespace, which the fast paths leave to encoding/json
	" 1", "1 ", "\t1\n", " \"a\" ", " true", "false ", " null ", " [1] ", "\r{}\r",
	// strings
	`""`, `"a"`, `"hello world"`, `"1"`, `"x"`, `"a\"b"`, `"a\\b"`, `"\u0041"`, `"\n"`,
	"\"tab\there\"", `"é"`, "\"\xff\"", `"<&>"`, "\"\x7f\"", `"unterminated`, `"`, `"a"b"`,
	`"\ud800"`, `"\/"`,
	// bools and null
	"true", "false", "null", "True", "tru", "truex", "nul",
	// composites and junk
	"[]", "[1,2]", "{}", `{"a":1}`, "[1,", "{", "}", "", " ", "x", "1 2", "1,", "[1] x",
}

func TestDecodeMatchesEncodingJSON(t *testing.T) {
	for _, s := range decodeInputs {
		in := []byte(s)
		checkDecode[int](t, in)
		checkDecode[int64](t, in)
		checkDecode[float64](t, in)
		checkDecode[string](t, in)
		checkDecode[bool](t, in)
		checkDecode[json.Number](t, in)
		checkDecode[json.RawMessage](t, in)
		checkDecode[[]int](t, in) // no fast path: the fallback itself
	}
}

// checkDecode compares decodeJSON with json.Unmarshal for one type and input
// and returns the decoded value.
func checkDecode[T any](t *testing.T, in []byte) (T, bool) {
	t.Helper()
	var got, want T
	gotErr := Decode(in, &got)
	wantErr := json.Unmarshal(in, &want)
	switch {
	case (gotErr == nil) != (wantErr == nil):
		t.Errorf("decode %q as %T: decodeJSON error %v, json.Unmarshal error %v", in, got, gotErr, wantErr)
		return got, false
	case gotErr != nil:
		var de *DecodeError
		if !errors.As(gotErr, &de) {
			t.Errorf("decode %q as %T: error %v (%T) is not a *DecodeError", in, got, gotErr, gotErr)
		}
		// The message quotes a short, escaped prefix of the input,
		// whatever its size and bytes.
		if msg := gotErr.Error(); len(msg) > 1024 || quote.Text(msg) != msg || strings.Contains(msg, "\n") {
			t.Errorf("decode %d bytes as %T: message not short and escaped: %q", len(in), got, msg)
		}
		return got, false
	case !same(got, want):
		t.Errorf("decode %q as %T: decodeJSON gives %#v, json.Unmarshal %#v", in, got, got, want)
		return got, false
	}
	// Decoding into a value that already holds something replaces it, as
	// json.Unmarshal does for these types.
	return got, true
}

// same is reflect.DeepEqual, except that floats compare bit for bit so that
// -0 and 0 differ.
func same(a, b any) bool {
	if x, ok := a.(float64); ok {
		return math.Float64bits(x) == math.Float64bits(b.(float64))
	}
	return reflect.DeepEqual(a, b)
}

func TestEncodeMatchesEncodingJSON(t *testing.T) {
	ints := []int64{0, 1, -1, 42, math.MaxInt64, math.MinInt64, math.MaxInt32, math.MinInt32}
	for _, n := range ints {
		checkEncode(t, n)
		checkEncode(t, int(n))
	}
	floats := []float64{
		0, math.Copysign(0, -1), 1, -1, 0.1, 1.5, 1e6, 1e20, 1e21, 1e-6, 1e-7, 9.999999e-7,
		123456789, 1.0 / 3, math.MaxFloat64, math.SmallestNonzeroFloat64, -1e-9, 1e-100,
		1e100, 2e-308, math.Inf(1), math.Inf(-1), math.NaN(), 5e-324, 999999999999999999999.0,
		100000000000000000000,
	}
	for _, f := range floats {
		checkEncode(t, f)
	}
	strs := []string{"", "a", "hello world", "<", ">", "&", `"`, `\`, "\n", "\t", "\x00", "\x1f",
		"\x7f", "é", "\xff", "\u2028", "\u2029", "a/b", "{}", "null"}
	for _, s := range strs {
		checkEncode(t, s)
	}
	checkEncode(t, true)
	checkEncode(t, false)
	for _, n := range []json.Number{"", "0", "1", "-1.5e3", "x", "1.", " 1", "01"} {
		checkEncode(t, n)
	}
	for _, r := range []json.RawMessage{nil, json.RawMessage("1"), json.RawMessage(`{"a": [1, 2]}`),
		json.RawMessage(`"<>"`), json.RawMessage("x"), json.RawMessage(" 1 ")} {
		checkEncode(t, r)
	}
	checkEncode(t, []int{1, 2}) // no fast path
}

// checkEncode compares appendJSON with json.Marshal for one value. The
// output is appended after a prefix, as runBatch appends to a batch buffer.
func checkEncode[T any](t *testing.T, v T) {
	t.Helper()
	const prefix = "[1,2e-7]"
	got, gotErr := Append([]byte(prefix), &v)
	want, wantErr := json.Marshal(v)
	switch {
	case (gotErr == nil) != (wantErr == nil):
		t.Errorf("encode %#v (%T): appendJSON error %v, json.Marshal error %v", v, v, gotErr, wantErr)
	case gotErr != nil:
		if string(got) != prefix {
			t.Errorf("encode %#v (%T): failed but changed the buffer to %q", v, v, got)
		}
	case !bytes.HasPrefix(got, []byte(prefix)):
		t.Errorf("encode %#v (%T): the prefix became %q", v, v, got)
	case string(got[len(prefix):]) != string(want):
		t.Errorf("encode %#v (%T): appendJSON gives %s, json.Marshal %s", v, v, got[len(prefix):], want)
	}
}

// An empty (non-nil) json.RawMessage result encodes as null, where
// json.Marshal fails: "no value" is not an error a task author can act on.
// This is the codec's one deliberate difference from encoding/json.
func TestEncodeEmptyRawMessage(t *testing.T) {
	v := json.RawMessage{}
	got, err := Append(nil, &v)
	if err != nil || string(got) != "null" {
		t.Fatalf("Append(json.RawMessage{}) = %q, %v; want null", got, err)
	}
}

func TestParseIntOverflow(t *testing.T) {
	for _, s := range []string{"9223372036854775808", "9999999999999999999", "-9223372036854775809"} {
		if n, ok := ParseInt([]byte(s)); ok {
			t.Errorf("ParseInt(%s) = %d, true; want false (out of int64 range)", s, n)
		}
	}
	for _, n := range []int64{math.MaxInt64, math.MinInt64 + 1, math.MinInt64, 0, -1, 1e18} {
		s := strconv.FormatInt(n, 10)
		if got, ok := ParseInt([]byte(s)); ok && got != n || !ok && len(s) <= 19 {
			t.Errorf("ParseInt(%s) = %d, %v", s, got, ok)
		}
	}
}

// checkRoundTrip encodes v and decodes the result, which must give what
// encoding/json's own round trip gives.
func checkRoundTrip[T any](t *testing.T, v T) {
	t.Helper()
	enc, err := Append(nil, &v)
	if err != nil {
		return // checkEncode compared the failure with json.Marshal's
	}
	var got, want T
	if err := Decode(enc, &got); err != nil {
		t.Errorf("round trip of %#v (%T): %s does not decode: %v", v, v, enc, err)
		return
	}
	js, _ := json.Marshal(v)
	if err := json.Unmarshal(js, &want); err != nil {
		t.Errorf("round trip of %#v (%T): encoding/json fails: %v", v, v, err)
		return
	}
	if !same(got, want) {
		t.Errorf("round trip of %#v (%T): got %#v, encoding/json %#v", v, v, got, want)
	}
}

// Which number types are exact. Func's adapters decode as encoding/json
// does: integer types fail on a number they cannot hold (never wrap or
// round), json.Number and json.RawMessage keep the text, and float64 (and
// any, whose numbers are float64) rounds to the nearest float64 — the
// author's choice in picking the type, as with encoding/json.
func TestNumberSemantics(t *testing.T) {
	const big = "123456789012345678901234567890"
	var i int
	if err := Decode([]byte(big), &i); err == nil {
		t.Errorf("int from %s = %d, want a decode error", big, i)
	}
	var i64 int64
	if err := Decode([]byte("9223372036854775808"), &i64); err == nil {
		t.Errorf("int64 from 2^63 = %d, want a decode error", i64)
	}
	if err := Decode([]byte("1.5"), &i); err == nil {
		t.Errorf("int from 1.5 = %d, want a decode error", i)
	}
	var n json.Number
	if err := Decode([]byte(big), &n); err != nil || string(n) != big {
		t.Errorf("json.Number from %s = %s, %v; want it exact", big, n, err)
	}
	var f float64
	if err := Decode([]byte(big), &f); err != nil || f != 1.2345678901234568e+29 {
		t.Errorf("float64 from %s = %v, %v; want the nearest float64", big, f, err)
	}
	if err := Decode([]byte("1e400"), &f); err == nil {
		t.Errorf("float64 from 1e400 = %v, want a decode error (out of range)", f)
	}
	var a any
	if err := Decode([]byte(big), &a); err != nil || a != 1.2345678901234568e+29 {
		t.Errorf("any from %s = %v, %v; want a float64, as encoding/json gives", big, a, err)
	}
}

// decodeSeeds seed both fuzz targets; the fuzzers found nothing new beyond
// the bugs these tests pin (see testdata/fuzz for any saved failures).
func decodeSeeds(f *testing.F) {
	for _, s := range decodeInputs {
		f.Add([]byte(s))
	}
}

// FuzzDecodeInt compares the allocation-free integer parser with
// encoding/json.
func FuzzDecodeInt(f *testing.F) {
	decodeSeeds(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		if n, ok := checkDecode[int](t, in); ok {
			checkEncode(t, n)
		}
		if n, ok := checkDecode[int64](t, in); ok {
			checkEncode(t, n)
		}
	})
}

// FuzzCodec decodes the input as every fast-path type and re-encodes what
// decoded, comparing each step with encoding/json.
func FuzzCodec(f *testing.F) {
	decodeSeeds(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		if v, ok := checkDecode[int](t, in); ok {
			checkEncode(t, v)
			checkRoundTrip(t, v)
		}
		if v, ok := checkDecode[float64](t, in); ok {
			checkEncode(t, v)
			checkRoundTrip(t, v)
		}
		if v, ok := checkDecode[string](t, in); ok {
			checkEncode(t, v)
			checkRoundTrip(t, v)
		}
		if v, ok := checkDecode[bool](t, in); ok {
			checkEncode(t, v)
			checkRoundTrip(t, v)
		}
		if v, ok := checkDecode[json.Number](t, in); ok {
			checkEncode(t, v)
			checkRoundTrip(t, v)
		}
		if v, ok := checkDecode[json.RawMessage](t, in); ok {
			checkEncode(t, v)
			checkRoundTrip(t, v)
		}
		checkDecode[any](t, in) // encoding/json itself, for the error messages
		checkBoundAll(t, in)
		// Encoders on values no JSON input produces: arbitrary strings and
		// float bit patterns.
		checkEncode(t, string(in))
		checkRoundTrip(t, string(in))
		checkEncode(t, json.Number(in))
		if len(in) >= 8 {
			f := math.Float64frombits(binaryUint64(in))
			checkEncode(t, f)
			checkRoundTrip(t, f)
		}
	})
}

func binaryUint64(b []byte) uint64 {
	var u uint64
	for _, c := range b[:8] {
		u = u<<8 | uint64(c)
	}
	return u
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
		{"number from string", func() error { var n json.Number; return Decode([]byte(`"x"`), &n) },
			`cannot decode input "x" as json.Number: want a number, got a JSON string`},
		{"number from bool", func() error { var n json.Number; return Decode([]byte(`true`), &n) },
			`cannot decode input true as json.Number: want a number, got a JSON bool`},
		{"number from array", func() error { var n json.Number; return Decode([]byte(` [1]`), &n) },
			`cannot decode input  [1] as json.Number: want a number, got a JSON array`},
		{"int from string", func() error { var n int; return Decode([]byte(`"x"`), &n) },
			`cannot decode input "x" as int: want int, got a JSON string`},
		{"int from float", func() error { var n int; return Decode([]byte(`1.5`), &n) },
			`cannot decode input 1.5 as int: want int, got a JSON number 1.5`},
		{"int overflow", func() error { var n int64; return Decode([]byte(`9223372036854775808`), &n) },
			`cannot decode input 9223372036854775808 as int64: want int64, got a JSON number 9223372036854775808`},
		{"float from string", func() error { var f float64; return Decode([]byte(`"1"`), &f) },
			`cannot decode input "1" as float64: want float64, got a JSON string`},
		{"string from number", func() error { var s string; return Decode([]byte(`1`), &s) },
			`cannot decode input 1 as string: want string, got a JSON number`},
		{"struct field", func() error { var p point; return Decode([]byte(`{"X":"1"}`), &p) },
			`cannot decode input {"X":"1"} as codec.point: field X: want int, got a JSON string`},
		{"syntax", func() error { var n int; return Decode([]byte(`x`), &n) },
			`cannot decode input x as int: invalid character 'x' looking for beginning of value`},
		{"long input", func() error { var n int; return Decode([]byte(long), &n) },
			`cannot decode input "` + strings.Repeat("a", 63) + `… (102 bytes) as int: want int, got a JSON string`},
		{"control bytes", func() error { var n int; return Decode([]byte("\"\xff\x1b[2J\""), &n) },
			`cannot decode input "\xff\x1b[2J" as int: invalid character '\x1b' in string literal`},
		{"invalid UTF-8", func() error { var n int; return Decode([]byte("\"\xff\""), &n) },
			`cannot decode input "\xff" as int: want int, got a JSON string`},
		{"huge number", func() error { var n int; return Decode([]byte(huge), &n) },
			`cannot decode input ` + huge[:64] + `… (20000000 bytes) as int: want int, got a JSON number ` + huge[:64] + `… (20000000 bytes)`},
		{"huge float", func() error { var f float64; return Decode([]byte("1"+strings.Repeat("0", 400)), &f) },
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
	err := Decode(in, &n)
	in[1] = 'y'
	if !strings.Contains(err.Error(), `"x"`) {
		t.Errorf("error %v changed with the input buffer", err)
	}
}

func TestAppendInt(t *testing.T) {
	ns := []int64{0, 1, -1, 9, -9, math.MaxInt64, math.MinInt64, math.MaxInt64 - 1, math.MinInt64 + 1}
	for p := int64(1); p <= 1e18; p *= 10 {
		ns = append(ns, p-1, p, p+1, -p+1, -p, -p-1, 2*p, 5*p-1)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 10000 {
		ns = append(ns, int64(rng.Uint64()), int64(rng.Uint64()>>rng.IntN(64)))
	}
	for _, n := range ns {
		for _, prefix := range []string{"", "[1,"} {
			buf := append(make([]byte, 0, len(prefix)+1), prefix...) // appending must grow it
			if got, want := string(AppendInt(buf, n)), prefix+strconv.FormatInt(n, 10); got != want {
				t.Fatalf("AppendInt(%q, %d) = %q, want %q", prefix, n, got, want)
			}
		}
	}
}

// Decoder and Encoder pick a path once; they must give what Decode and
// Append give. FuzzCodec checks them on every input it tries.
func checkBound[T any](t *testing.T, in []byte) {
	t.Helper()
	var a, b T
	errA := Decode(in, &a)
	errB := Decoder(&b)(in)
	if (errA == nil) != (errB == nil) || errA != nil && errA.Error() != errB.Error() || errA == nil && !same(a, b) {
		t.Errorf("decode %q as %T: Decode gives %#v, %v; Decoder %#v, %v", in, a, a, errA, b, errB)
	}
	if errA != nil {
		return
	}
	outA, errA := Append([]byte("x"), &a)
	outB, errB := Encoder(&b)([]byte("x"))
	if string(outA) != string(outB) || (errA == nil) != (errB == nil) {
		t.Errorf("encode %#v (%T): Append gives %q, %v; Encoder %q, %v", a, a, outA, errA, outB, errB)
	}
}

func TestBoundMatches(t *testing.T) {
	for _, s := range decodeInputs {
		checkBoundAll(t, []byte(s))
	}
}

func checkBoundAll(t *testing.T, in []byte) {
	t.Helper()
	checkBound[int](t, in)
	checkBound[int64](t, in)
	checkBound[float64](t, in)
	checkBound[string](t, in)
	checkBound[bool](t, in)
	checkBound[json.Number](t, in)
	checkBound[json.RawMessage](t, in)
	checkBound[[]int](t, in)
	checkBound[any](t, in)
}

// ParseInt reads up to eight digits at once: every length, a bad byte in
// every position, every digit value, and the neighbours of '0' and '9'.
func TestParseIntDigits(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for k := 1; k <= 20; k++ {
		for range 200 {
			d := make([]byte, k)
			for i := range d {
				d[i] = byte('0' + rng.IntN(10))
			}
			if k > 1 && d[0] == '0' {
				d[0] = '1'
			}
			for _, s := range []string{string(d), "-" + string(d)} {
				checkParseInt(t, s)
				for i := range len(s) {
					for _, c := range []byte{'/', ':', 'a', ' ', 0, 0xff, '.', 'e', '-', '+'} {
						bad := []byte(s)
						bad[i] = c
						checkParseInt(t, string(bad))
					}
				}
			}
		}
	}
}

func checkParseInt(t *testing.T, s string) {
	t.Helper()
	got, ok := ParseInt([]byte(s))
	want, err := strconv.ParseInt(s, 10, 64)
	valid := err == nil && !strings.HasPrefix(s, "+") && !strings.HasPrefix(strings.TrimPrefix(s, "-"), "0") || s == "0" || s == "-0"
	switch {
	case ok && (!valid || got != want):
		t.Fatalf("ParseInt(%q) = %d, true; want %d, %v", s, got, want, valid)
	case !ok && valid && len(strings.TrimPrefix(s, "-")) < 19:
		t.Fatalf("ParseInt(%q) = false, want %d", s, want)
	}
}

// Aliases names exactly the types whose fast paths share the input's
// memory.
func TestAliases(t *testing.T) {
	type myString string
	for _, c := range []struct {
		got, want bool
		name      string
	}{
		{Aliases[string](), true, "string"},
		{Aliases[json.Number](), true, "json.Number"},
		{Aliases[myString](), false, "a named string (encoding/json's path)"},
		{Aliases[int](), false, "int"},
		{Aliases[json.RawMessage](), false, "json.RawMessage"},
		{Aliases[[]string](), false, "[]string"},
		{Aliases[map[string]any](), false, "map[string]any"},
	} {
		if c.got != c.want {
			t.Errorf("Aliases[%s]() = %v, want %v", c.name, c.got, c.want)
		}
	}
	// What the fast path shares, the slow path copies.
	data := []byte(`"abc"`)
	var s string
	var m myString
	if err := Decode(data, &s); err != nil {
		t.Fatal(err)
	}
	if err := Decode(data, &m); err != nil {
		t.Fatal(err)
	}
	data[1] = 'x'
	if s != "xbc" || m != "abc" {
		t.Errorf("after changing the data: string %q (want it shared: \"xbc\"), myString %q (want a copy: \"abc\")", s, m)
	}
}
