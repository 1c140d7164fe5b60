// Package hist is the latency histogram of pool and cluster statistics:
// log2 buckets of nanoseconds, cheap to add to, good to a factor of √2.
package hist

import (
	"math/bits"
	"time"
)

// Log2 counts durations in 64 buckets: bucket b holds values in
// [2^(b-1), 2^b) nanoseconds. The zero value is empty and ready to use.
type Log2 [64]int64

// Add counts n durations of d each (at least 1 ns).
func (h *Log2) Add(d time.Duration, n int64) {
	h[bits.Len64(uint64(max(d, 1)))] += n
}

// Quantile estimates the q-th quantile (0 < q < 1): the geometric middle
// of the bucket the rank falls in; 0 when h is empty.
func (h *Log2) Quantile(q float64) time.Duration {
	var total int64
	for _, n := range h {
		total += n
	}
	if total == 0 {
		return 0
	}
	rank := int64(q * float64(total))
	var seen int64
	for b, n := range h {
		seen += n
		if seen > rank {
			if b == 0 {
				return 0
			}
			lo := int64(1) << (b - 1)
			return time.Duration(float64(lo) * 1.41421356)
		}
	}
	return 0
}
