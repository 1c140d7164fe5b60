package codec

import (
	"errors"
	"fmt"
	"testing"
)

// cut joins values into a run: data and ends, as a batch carries them.
func cut(values ...string) ([]byte, []uint32) {
	var data []byte
	var ends []uint32
	for _, v := range values {
		data = append(data, v...)
		ends = append(ends, uint32(len(data)))
	}
	return data, ends
}

// decodeEach is DecodeRun's reference: Decode of each value on its own.
func decodeEach[T any](t *testing.T, values []string) ([]T, map[int]bool) {
	t.Helper()
	out, bad := make([]T, len(values)), map[int]bool{}
	for i, v := range values {
		if v == "" {
			continue
		}
		var x T
		if err := Decode([]byte(v), &x); err != nil {
			bad[i] = true
			continue
		}
		out[i] = x
	}
	return out, bad
}

// runAll decodes a run with DecodeRun, going on past each failure.
func runAll[T any](t *testing.T, values []string) ([]T, map[int]bool) {
	t.Helper()
	data, ends := cut(values...)
	out, bad := make([]T, len(values)), map[int]bool{}
	for from := 0; from < len(ends); {
		n, err := DecodeRun(out, data, ends, from)
		if n == len(ends) {
			if err != nil {
				t.Fatalf("DecodeRun returned %d (all) and error %v", n, err)
			}
			break
		}
		if n < from || n >= len(ends) {
			t.Fatalf("DecodeRun from %d returned index %d of %d", from, n, len(ends))
		}
		if de := (*DecodeError)(nil); !errors.As(err, &de) {
			t.Fatalf("value %d %q: error %v (%T), want a *DecodeError", n, values[n], err, err)
		}
		bad[n] = true
		from = n + 1
	}
	return out, bad
}

func checkRun[T comparable](t *testing.T, values []string) {
	t.Helper()
	want, wantBad := decodeEach[T](t, values)
	got, gotBad := runAll[T](t, values)
	if fmt.Sprint(got) != fmt.Sprint(want) || fmt.Sprint(gotBad) != fmt.Sprint(wantBad) {
		t.Errorf("%T run %q: got %v (failed %v), want %v (failed %v)", got, values, got, gotBad, want, wantBad)
	}
}

func TestDecodeRun(t *testing.T) {
	values := []string{"1", "", "-42", "9223372036854775807", "9223372036854775808", "1e3", " 7 ", "x", "\"s\"", "0", "-0", "3.5", "null"}
	checkRun[int](t, values)
	checkRun[int64](t, values)
	checkRun[float64](t, values)
	checkRun[string](t, values)
	checkRun[bool](t, []string{"true", "", "false", "1", "null"})
	if n, err := DecodeRun([]int(nil), nil, nil, 0); n != 0 || err != nil {
		t.Errorf("DecodeRun of an empty run = %d, %v", n, err)
	}
}
