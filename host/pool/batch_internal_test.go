package pool

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/pluginpool/pluginpool/internal/jsonv"
	workerpb "github.com/pluginpool/pluginpool/sdk/proto"
)

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

// checkValues merges its errors into the plugin's own, in index order, and
// leaves an item the plugin failed itself with the plugin's error.
func TestCheckValuesMerges(t *testing.T) {
	resp := &workerpb.Batch{
		First: 10,
		Data:  []byte(`1NaN"x"{`),
		Ends:  []uint32{1, 4, 4, 7, 8, 8},
		Errors: []*workerpb.ItemError{
			{Index: 12, Kind: workerpb.ErrorKind_ERROR_KIND_TASK, Message: []byte("plugin's own")},
			{Index: 15, Kind: workerpb.ErrorKind_ERROR_KIND_DECODE, Message: []byte("bad input")},
		},
	}
	checkValues(resp)
	var got []string
	for _, e := range resp.Errors {
		got = append(got, fmt.Sprintf("%d %s", e.Index, e.Message))
	}
	want := []string{
		`11 the plugin returned a value that is not valid JSON: NaN`,
		"12 plugin's own",
		`14 the plugin returned a value that is not valid JSON: {`,
		"15 bad input",
	}
	if !slices.Equal(got, want) {
		t.Errorf("errors after checkValues:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// BenchmarkCheckValues: the cost of checking a 16k-item answer of small
// ints, as W1's are, per item.
func BenchmarkCheckValues(b *testing.B) {
	resp := &workerpb.Batch{}
	for i := range 16384 {
		resp.Data = fmt.Appendf(resp.Data, "%d", 2*i)
		resp.Ends = append(resp.Ends, uint32(len(resp.Data)))
	}
	b.ResetTimer()
	for b.Loop() {
		checkValues(resp)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(resp.Ends)), "ns/item")
}

// FuzzCheckValues: checkValues fails exactly the items that are not one
// line of JSON, whatever the fast paths take.
func FuzzCheckValues(f *testing.F) {
	for _, s := range []string{"1|22|0", "0|00|-0|-|-01", "1|x|\"a\"", "12|3.5|1e9|"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		resp := &workerpb.Batch{First: 3}
		for _, v := range strings.Split(s, "|") {
			resp.Data = append(resp.Data, v...)
			resp.Ends = append(resp.Ends, uint32(len(resp.Data)))
		}
		checkValues(resp)
		var got, want []uint32
		for _, e := range resp.Errors {
			got = append(got, e.Index)
		}
		for i, v := range strings.Split(s, "|") {
			if v != "" && !jsonv.OneLine([]byte(v)) {
				want = append(want, uint32(3+i))
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("checkValues(%q) failed items %v; want %v", s, got, want)
		}
	})
}
