// Package inputs prepares benchmark inputs the way a Go caller of
// pool.Map would.
package inputs

import "strconv"

// Ints encodes 0..n-1 as JSON numbers appended to one buffer and sliced:
// two allocations in all. Each item is capped, so appending to one cannot
// overwrite the next.
func Ints(n int) [][]byte {
	buf := make([]byte, 0, n*8)
	items := make([][]byte, n)
	for i := range n {
		start := len(buf)
		buf = strconv.AppendInt(buf, int64(i), 10)
		items[i] = buf[start:len(buf):len(buf)]
	}
	return items
}
