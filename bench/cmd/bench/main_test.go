package main

import (
	"strings"
	"testing"
)

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		xs   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{3}, 3},
		{[]float64{5, 1, 3}, 3},
		{[]float64{4, 1, 3, 2}, 2.5},
	} {
		if got := median(c.xs); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.xs, got, c.want)
		}
	}
}

// A broken run must never pass as a fast one.
func TestVerifyDoubled(t *testing.T) {
	for _, c := range []struct {
		name, out string
		ok        bool
	}{
		{"ints", "0\n2\n4\n", true},
		{"floats", "0\n2.0\n4e0\n", true},
		{"no final newline", "0\n2\n4", true},
		{"wrong value", "0\n3\n4\n", false},
		{"missing line", "0\n2\n", false},
		{"extra line", "0\n2\n4\n6\n", false},
		{"error text", "0\n2\n{\"error\":\"x\"}\n", false},
		{"empty", "", false},
	} {
		err := verifyDoubled(strings.NewReader(c.out), 3)
		if (err == nil) != c.ok {
			t.Errorf("%s: verifyDoubled(%q) = %v, want ok=%v", c.name, c.out, err, c.ok)
		}
	}
}

func TestFormat(t *testing.T) {
	for _, c := range []struct {
		v    float64
		unit string
		want string
	}{
		{0.0913, "s", "91.3 ms"},
		{2.314, "s", "2.31 s"},
		{61.4, "µs", "61 µs"},
		{1.956, "x", "1.96x"},
		{42.25, "MiB", "42.2 MiB"},
	} {
		if got := format(c.v, c.unit); got != c.want {
			t.Errorf("format(%v, %q) = %q, want %q", c.v, c.unit, got, c.want)
		}
	}
}
