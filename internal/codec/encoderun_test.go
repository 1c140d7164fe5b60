package codec

import (
	"math"
	"testing"
)

// EncodeRun appends what Append appends, item after item, stopping where
// an item would not fit, and at an item that does not encode.
func TestEncodeRun(t *testing.T) {
	ints := []int{0, 1, -1, math.MaxInt64, math.MinInt64, 42, 7}
	floats := []float64{1.5, 2, math.NaN(), 3}
	strs := []string{"a", "b\n", "", "long string of some length"}
	check := func(name string, room int, run func(data []byte, ends []uint32) (int, []byte, error), want func(i int) ([]byte, error), count int) {
		t.Helper()
		data := make([]byte, 0, room)
		ends := make([]uint32, count)
		n, out, err := run(data, ends)
		prev := uint32(0)
		for i := range n {
			w, werr := want(i)
			if werr != nil || string(out[prev:ends[i]]) != string(w) {
				t.Fatalf("%s (room %d): item %d = %q, want %q (%v)", name, room, i, out[prev:ends[i]], w, werr)
			}
			prev = ends[i]
		}
		if int(prev) != len(out) || cap(out) != room {
			t.Fatalf("%s (room %d): %d items end at %d, data is %d of cap %d (was %d)", name, room, n, prev, len(out), cap(out), room)
		}
		if n < count {
			w, werr := want(n)
			switch {
			case werr != nil && err == nil:
				t.Fatalf("%s (room %d): item %d does not encode (%v) but EncodeRun stopped without an error", name, room, n, werr)
			case werr == nil && err != nil:
				t.Fatalf("%s (room %d): item %d: %v", name, room, n, err)
			case werr == nil && len(out)+len(w) <= room && !(name == "int" && room-len(out) < maxIntLen):
				t.Fatalf("%s (room %d): stopped at item %d (%q), which fits", name, room, n, w)
			}
		}
	}
	for room := range 80 {
		check("int", room, func(d []byte, e []uint32) (int, []byte, error) { return EncodeRun(d, e, ints) },
			func(i int) ([]byte, error) { return Append(nil, &ints[i]) }, len(ints))
		check("float64", room, func(d []byte, e []uint32) (int, []byte, error) { return EncodeRun(d, e, floats) },
			func(i int) ([]byte, error) { return Append(nil, &floats[i]) }, len(floats))
		check("string", room, func(d []byte, e []uint32) (int, []byte, error) { return EncodeRun(d, e, strs) },
			func(i int) ([]byte, error) { return Append(nil, &strs[i]) }, len(strs))
	}
	// ends bounds the run.
	if n, _, _ := EncodeRun(make([]byte, 0, 100), make([]uint32, 2), ints); n != 2 {
		t.Errorf("EncodeRun with room for 2 ends encoded %d items", n)
	}
}
