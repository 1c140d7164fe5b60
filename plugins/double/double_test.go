package main

import (
	"context"
	"encoding/json"
	"errors"
	"math"
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
		// doubling overflows int64: math/big, still exact
		{"4611686018427387904", "9223372036854775808"},
		{"9223372036854775807", "18446744073709551614"},
		{"-9223372036854775808", "-18446744073709551616"},
		{"-4611686018427387905", "-9223372036854775810"},
		// other numbers: float64, written like encoding/json
		{"1.5", "3"}, {"0.1", "0.2"}, {"-2.25", "-4.5"}, {"1e3", "2000"}, {"1E-3", "0.002"},
		{"-0.0", "-0"}, {"1e-7", "2e-7"}, {"5e-7", "0.000001"}, {"4e20", "800000000000000000000"},
		{"6e20", "1.2e+21"}, {"9223372036854775808", "18446744073709552000"},
		{"1e308", ""}, {"1e400", ""}, {"-1e308", ""}, {"", ""}, {"x", ""},
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
		"":      "cannot decode input null as json.Number: want a number, got null",
		"1e308": "2 * 1e308 overflows a float64",
		"1e400": "1e400 is out of range for a float64",
		"abc":   `want a number, got "abc"`,
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

func TestFormatFloatMatchesEncodingJSON(t *testing.T) {
	for _, f := range []float64{0, math.Copysign(0, -1), 1, -1, 0.1, 1.0 / 3, 1e-6, 1e-7, 9.99e-7,
		-1e-9, 1e20, 1e21, -1e21, 123456789.125, math.MaxFloat64, math.SmallestNonzeroFloat64, 2e-308} {
		want, err := json.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		if got := formatFloat(f); got != string(want) {
			t.Errorf("formatFloat(%v) = %s, encoding/json %s", f, got, want)
		}
	}
}

func TestDoubleAnswersAreJSON(t *testing.T) {
	for _, in := range []string{"1", "-9223372036854775808", "1.5", "6e20", "1e-7", "-0.0"} {
		got, err := double(context.Background(), json.Number(in))
		var v any
		if err != nil || json.Unmarshal([]byte(got), &v) != nil {
			t.Errorf("double(%s) = %q, %v: not a JSON value", in, got, err)
		} else if _, ok := v.(float64); !ok {
			t.Errorf("double(%s) = %q: not a JSON number", in, got)
		}
	}
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
