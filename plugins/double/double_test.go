package main

import (
	"context"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/pluginpool/pluginpool/sdk"
)

func TestDouble(t *testing.T) {
	tests := []struct{ in, want string }{
		// integers, exact
		{"0", "0"}, {"1", "2"}, {"21", "42"}, {"-0", "0"},
		{"-1", "-2"}, {"-21", "-42"},
		{"4611686018427387903", "9223372036854775806"},   // MaxInt64/2: still int64
		{"-4611686018427387904", "-9223372036854775808"}, // MinInt64/2: still int64
		// past int64: still exact, still integers
		{"4611686018427387904", "9223372036854775808"},
		{"9223372036854775807", "18446744073709551614"},
		{"-9223372036854775808", "-18446744073709551616"},
		{"-4611686018427387905", "-9223372036854775810"},
		{"9223372036854775808", "18446744073709551616"}, // float64 said 18446744073709552000
		{"123456789012345678901234567890", "246913578024691357802469135780"},
		{"5" + strings.Repeat("0", 400), "1" + strings.Repeat("0", 401)},
		// other numbers: written as encoding/json writes floats, every digit exact
		{"1.5", "3"}, {"0.1", "0.2"}, {"-2.25", "-4.5"}, {"1e3", "2000"}, {"1E-3", "0.002"},
		{"-0.0", "-0"}, {"0.0", "0"}, {"0e5", "0"}, {"1e-7", "2e-7"}, {"5e-7", "0.000001"}, {"4e20", "800000000000000000000"},
		{"6e20", "1.2e+21"}, {"0.1e1", "2"}, {"1.000", "2"}, {"0.05", "0.1"}, {"-0.0000005", "-0.000001"},
		{"1.23456789012345678901234567890", "2.4691357802469135780246913578"},
		{"0.30000000000000000000000000000001", "0.60000000000000000000000000000002"},
		{"1e308", "2e+308"}, {"1e400", "2e+400"}, {"-1e308", "-2e+308"}, {"1.7976931348623157e308", "3.5953862697246314e+308"},
		{"5e-324", "1e-323"}, {"1e-400", "2e-400"}, {"123.456e-2", "2.46912"},
		{"1e999999999999999", "2e+999999999999999"},
		// not numbers, or out of the range double takes
		{"1e1000000000000001", ""}, {"1e-99999999999999999999999", ""},
		{"", ""}, {"x", ""}, {"01", ""}, {"1.", ""}, {".5", ""}, {"+1", ""}, {"1e", ""}, {"--1", ""}, {" 1", ""},
	}
	for _, tt := range tests {
		got, err := double(context.Background(), json.Number(tt.in))
		switch {
		case tt.want == "" && err == nil:
			t.Errorf("double(%q) = %s, want an error", tt.in, got)
		case tt.want != "" && (err != nil || string(got) != tt.want):
			t.Errorf("double(%q) = %s, %v; want %s", tt.in, got, err, tt.want)
		}
	}
}

func TestDoubleErrors(t *testing.T) {
	for in, want := range map[string]string{
		"":                   "cannot decode input null as json.Number: want a number, got null",
		"1e1000000000000001": "1e1000000000000001: exponent out of range (at most 1000000000000000 either way)",
		"abc":                "want a number, got abc",
		"\x1b[2J":            `want a number, got \x1b[2J`,
	} {
		_, err := double(context.Background(), json.Number(in))
		if err == nil || err.Error() != want {
			t.Errorf("double(%q) error = %v, want %q", in, err, want)
		}
	}
}

// null reaches double as "" and fails as the SDK's own decode errors do,
// so the host reports it as a decode error (ERROR_KIND_DECODE).
func TestDoubleNull(t *testing.T) {
	_, err := double(context.Background(), "")
	var de *sdk.DecodeError
	if !errors.As(err, &de) {
		t.Errorf("double(null) error = %v (%T), want an *sdk.DecodeError", err, err)
	}
}

func TestDoubleAnswersAreJSON(t *testing.T) {
	for _, in := range []string{"1", "-9223372036854775808", "1.5", "6e20", "1e-7", "-0.0", "1e400", "123456789012345678901234567890"} {
		got, err := double(context.Background(), json.Number(in))
		if _, ok := parseDecimal([]byte(got)); err != nil || !ok || !json.Valid([]byte(got)) {
			t.Errorf("double(%s) = %q, %v: not a JSON number", in, got, err)
		}
	}
}

// exactly parses a JSON number as a rational, every digit kept.
func exactly(t *testing.T, s string) *big.Rat {
	t.Helper()
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		t.Fatalf("%q is not a number", s)
	}
	return r
}

// FuzzDouble: whatever JSON number comes in, what comes out is a JSON
// number worth exactly twice as much, an integer for an integer; anything
// else is an error.
func FuzzDouble(f *testing.F) {
	for _, s := range []string{"0", "-0", "1", "1.5", "0.1", "9223372036854775808", "123456789012345678901234567890",
		"1e400", "5e-324", "6e20", "-0.0000005", "1.23456789012345678901234567890", "1e", "x", "01", "1e-999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := double(context.Background(), json.Number(in))
		d, isNum := parseDecimal([]byte(in))
		if !isNum || !json.Valid([]byte(in)) {
			if err == nil {
				t.Fatalf("double(%q) = %s, want an error", in, got)
			}
			return
		}
		if d.exp > 9999 || d.exp < -9999 {
			return // exact, but too large a rational to check here
		}
		if err != nil {
			t.Fatalf("double(%q): %v", in, err)
		}
		if _, ok := parseDecimal([]byte(got)); !ok {
			t.Fatalf("double(%q) = %q: not a JSON number", in, got)
		}
		want := new(big.Rat).Mul(exactly(t, in), big.NewRat(2, 1))
		if exactly(t, string(got)).Cmp(want) != 0 {
			t.Fatalf("double(%q) = %s, want %s", in, got, want.FloatString(40))
		}
		if d.integer && strings.ContainsAny(string(got), ".eE") {
			t.Fatalf("double(%q) = %s: an integer came back as a float", in, got)
		}
		// The plugin's own decoding agrees.
		var n number
		if err := n.UnmarshalJSON([]byte(in)); err != nil {
			t.Fatalf("UnmarshalJSON(%q): %v", in, err)
		}
		fast, err := doubleFast(context.Background(), n)
		out, _ := fast.AppendJSON(nil)
		if err != nil || string(out) != string(got) {
			t.Fatalf("doubleFast(%q) = %s, %v; double %s", in, out, err, got)
		}
	})
}

func BenchmarkDouble(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := double(context.Background(), "123456"); err != nil {
			b.Fatal(err)
		}
	}
}

// The plugin's fast path agrees with double on every case, and reports
// non-numbers as decode errors.
func TestDoubleFast(t *testing.T) {
	for _, in := range []string{"0", "1", "-21", "4611686018427387903", "4611686018427387904",
		"9223372036854775807", "-9223372036854775808", "1.5", "1e3", "6e20", "9223372036854775808"} {
		var n number
		if err := n.UnmarshalJSON([]byte(in)); err != nil {
			t.Fatalf("UnmarshalJSON(%s): %v", in, err)
		}
		got, err := doubleFast(context.Background(), n)
		want, werr := double(context.Background(), json.Number(in))
		out, _ := got.AppendJSON(nil)
		if (err != nil) != (werr != nil) || (err == nil && string(out) != string(want)) {
			t.Errorf("doubleFast(%s) = %s, %v; double = %s, %v", in, out, err, want, werr)
		}
	}
	for in, want := range map[string]string{`"x"`: "got a JSON string", "null": "got null", "{}": "got a JSON object", "x": "invalid character 'x'"} {
		var n number
		if err := n.UnmarshalJSON([]byte(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("UnmarshalJSON(%s) = %v, want %q", in, err, want)
		}
	}
}
