package pool

import (
	"context"
	"encoding/binary"
	"errors"
	"slices"
	"testing"

	workerpb "github.com/pluginpool/pluginpool/sdk/proto"
)

// answerFromBytes builds a response batch from fuzz input: ends as
// little-endian uint16s, errors as (index, kind) byte pairs, printed lines
// as index bytes.
func answerFromBytes(first uint8, data, ends, errs, outs []byte) *workerpb.Batch {
	resp := &workerpb.Batch{Seq: 1, First: uint32(first), Data: data}
	for i := 0; i+2 <= len(ends); i += 2 {
		resp.Ends = append(resp.Ends, uint32(binary.LittleEndian.Uint16(ends[i:])))
	}
	for i := 0; i+2 <= len(errs); i += 2 {
		resp.Errors = append(resp.Errors, &workerpb.ItemError{Index: uint32(errs[i]), Kind: workerpb.ErrorKind(errs[i+1] % 8), Message: []byte{'e', errs[i], 0xff, 0x1b}})
	}
	for _, o := range outs {
		resp.Output = append(resp.Output, &workerpb.ItemOutput{Index: uint32(o), Lines: [][]byte{{'o', o}, []byte("\xff")}})
	}
	return resp
}

// wellFormed is the wire contract for an answer, said the plain way: the
// oracle checkAnswer must agree with.
func wellFormed(resp *workerpb.Batch, done, size int) bool {
	n := len(resp.Ends)
	if int(resp.First) != done || done+n > size {
		return false
	}
	if !slices.IsSorted(resp.Ends) || (n > 0 && int(resp.Ends[n-1]) > len(resp.Data)) {
		return false
	}
	inRange := func(i uint32) bool { return int(i) >= done && int(i) < done+n }
	for k, e := range resp.Errors {
		if !inRange(e.Index) || (k > 0 && e.Index <= resp.Errors[k-1].Index) {
			return false
		}
	}
	for k, o := range resp.Output {
		if !inRange(o.Index) || (k > 0 && o.Index <= resp.Output[k-1].Index) {
			return false
		}
	}
	return true
}

// FuzzAnswer gives the host arbitrary answers to a batch, as a broken or
// hostile plugin could send them. checkAnswer, with deliver's check of
// where the answer fits, must accept exactly the well-formed ones, and resolving one must settle exactly the items it
// answers: each with its own slice of the data, its own error and its own
// printed lines. Nothing may panic.
func FuzzAnswer(f *testing.F) {
	f.Add(uint8(4), uint8(0), uint8(0), []byte("246"), []byte{1, 0, 2, 0, 3, 0}, []byte(nil), []byte(nil), true)
	f.Add(uint8(4), uint8(1), uint8(1), []byte("4x"), []byte{1, 0, 1, 0, 2, 0}, []byte{2, 1}, []byte{1, 3}, false)
	f.Add(uint8(3), uint8(0), uint8(0), []byte("12"), []byte{2, 0, 1, 0}, []byte(nil), []byte(nil), true) // backwards
	f.Add(uint8(3), uint8(0), uint8(0), []byte("12"), []byte{1, 0, 2, 0}, []byte{1, 1, 0, 1}, []byte(nil), true)
	f.Add(uint8(3), uint8(0), uint8(0), []byte("12"), []byte{1, 0, 9, 0}, []byte(nil), []byte(nil), true)
	f.Add(uint8(2), uint8(0), uint8(0), []byte("1"), []byte{1, 0}, []byte{0, 6}, []byte(nil), true) // retry
	f.Fuzz(func(t *testing.T, size, done, first uint8, data, ends, errs, outs []byte, mapJob bool) {
		if done > size {
			done = size
		}
		resp := answerFromBytes(first, data, ends, errs, outs)
		err := checkAnswer(resp)
		if err == nil && (int(resp.First) != int(done) || int(done)+len(resp.Ends) > int(size)) {
			err = errProtocol // deliver's check, under the pool's lock, of where it fits
		}
		if want := wellFormed(resp, int(done), int(size)); want != (err == nil) {
			t.Fatalf("checkAnswer(first %d, ends %v, %d errors, %d outputs; %d of %d done) = %v; well formed: %v",
				first, resp.Ends, len(resp.Errors), len(resp.Output), done, size, err, want)
		}
		if err != nil {
			if !errors.Is(err, errProtocol) {
				t.Fatalf("error %v does not match errProtocol", err)
			}
			return
		}

		p := &Pool{cfg: Config{Name: "fuzz", MaxAttempts: 3, MaxResultBytes: DefaultMaxItemBytes}}
		p.stats.init(1)
		j := newJob(context.Background())
		items := make([][]byte, size)
		if mapJob {
			j.src, j.results, j.left = items, make([]Result, size), int(size)
		} else {
			j.ordered, j.complete = true, map[int]*batch{}
		}
		b := j.newRoot(p, 0, items)
		if !mapJob {
			b.results = make([]Result, size)
		}
		answered := resp.Ends // resolveAnswer may take them
		retry := p.resolveAnswer(b, int(done), resp)
		results := b.results
		if !mapJob {
			results = rootResults(b)
		}

		errAt := map[int]*workerpb.ItemError{}
		for _, e := range resp.Errors {
			errAt[int(e.Index)] = e
		}
		outAt := map[int][][]byte{}
		for _, o := range resp.Output {
			outAt[int(o.Index)] = o.Lines
		}
		prev := uint32(0)
		for i, end := range answered {
			k := int(done) + i
			r, item := results[k], data[prev:end]
			prev = end
			e := errAt[k]
			if e != nil && e.Kind == workerpb.ErrorKind_ERROR_KIND_RETRY {
				if !slices.Contains(retry, int32(k)) || b.has(k) {
					t.Fatalf("item %d asked to be retried: retry %v, resolved %v", k, retry, b.has(k))
				}
				continue
			}
			if !b.has(k) {
				t.Fatalf("item %d was answered but not resolved", k)
			}
			switch {
			case e != nil && (r.Err == nil || r.Value != nil):
				t.Fatalf("item %d failed (%v) but resolved to %q, %v", k, e.Kind, r.Value, r.Err)
			case e == nil && r.Err != nil:
				t.Fatalf("item %d resolved to error %v, with none sent", k, r.Err)
			case e == nil && string(r.Value) != string(item):
				t.Fatalf("item %d resolved to %q, want %q", k, r.Value, item)
			}
			if want := outAt[k]; len(r.Output) != len(want) {
				t.Fatalf("item %d has %d printed lines, want %d", k, len(r.Output), len(want))
			} else {
				for l := range want {
					if r.Output[l] != string(want[l]) {
						t.Fatalf("item %d printed %q, want %q", k, r.Output[l], want[l])
					}
				}
			}
		}
		for k := range int(size) {
			if (k < int(done) || k >= int(done)+len(answered)) && b.has(k) {
				t.Fatalf("item %d, outside the answer, was resolved", k)
			}
		}
	})
}

// TestAllDigits checks checkValues' fast scan against the byte-wise one,
// for every byte at every offset of a word and its tail.
func TestAllDigits(t *testing.T) {
	for c := range 256 {
		for at := range 11 {
			b := []byte("01234567890")
			b[at] = byte(c)
			want := c >= '0' && c <= '9'
			if got := allDigits(b); got != want {
				t.Fatalf("allDigits(%q) = %v, want %v", b, got, want)
			}
			if got := allDigits(b[:at+1]); got != want {
				t.Fatalf("allDigits(%q) = %v, want %v", b[:at+1], got, want)
			}
		}
	}
}

// rootResults returns an Imap root's results, all of them, as its
// consumer gets them. Positions not resolved hold zero Results.
func rootResults(b *batch) []Result {
	var all, buf []Result
	b.yieldRuns(&buf, sink{results: func(_ int, rs []Result) bool {
		all = append(all, rs...)
		return true
	}})
	return all
}

// BenchmarkCheckAnswer validates an answer of 16384 items, the adaptive
// batch size's ceiling: the cost checkAnswer adds to each batch.
func BenchmarkCheckAnswer(b *testing.B) {
	resp := &workerpb.Batch{Seq: 1, Data: make([]byte, 16384*7)}
	for i := range 16384 {
		resp.Ends = append(resp.Ends, uint32(7*(i+1)))
	}
	for b.Loop() {
		if err := checkAnswer(resp); err != nil {
			b.Fatal(err)
		}
	}
}
