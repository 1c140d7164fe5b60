// Package spin is the CPU-bound kernel of the W4 workload, shared by the
// bench-only spin plugin and the bench runner, which calibrates it.
package spin

// Spin runs iters steps of a 64-bit linear congruential generator seeded
// with seed and returns 53 bits of the final state. Each step depends on
// the one before, so the loop cannot be vectorized or skipped: its cost is
// iters multiply-adds (about 1 ns each). bench/python/w4_spin.py runs the
// same loop.
func Spin(seed, iters uint64) uint64 {
	x := seed | 1
	for range iters {
		x = x*6364136223846793005 + 1442695040888963407
	}
	return x >> 11
}
