package pool

import "testing"

func TestMarkRange(t *testing.T) {
	for _, r := range [][2]int{{0, 0}, {0, 1}, {3, 64}, {0, 64}, {5, 200}, {64, 128}, {63, 129}} {
		b := &batch{got: make([]uint64, 4)}
		b.markRange(r[0], r[1])
		for i := 0; i < 256; i++ {
			if want := i >= r[0] && i < r[1]; b.has(i) != want {
				t.Fatalf("markRange(%d, %d): has(%d) = %v", r[0], r[1], i, !want)
			}
		}
	}
}
