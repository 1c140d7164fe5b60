package testkit

import (
	"strconv"
	"testing"

	"github.com/pluginpool/pluginpool/host/backend"
)

// Ints returns the items 0..n-1, as JSON numbers.
func Ints(n int) [][]byte {
	items := make([][]byte, n)
	for i := range items {
		items[i] = []byte(strconv.Itoa(i))
	}
	return items
}

// CheckDoubled fails t unless result i is 2*i with no error, for every i:
// double's answers to Ints.
func CheckDoubled(t testing.TB, rs []backend.Result) {
	t.Helper()
	bad := 0
	for i, r := range rs {
		if r.Err != nil || string(r.Value) != strconv.Itoa(2*i) {
			if bad++; bad <= 10 {
				t.Errorf("item %d: got %q, err %v; want %d", i, r.Value, r.Err, 2*i)
			}
		}
	}
	if bad > 10 {
		t.Errorf("... %d items wrong in all", bad)
	}
}
