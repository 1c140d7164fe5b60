package wire

import (
	"bytes"
	"math"
	"slices"
	"strconv"
	"testing"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	workerpb "github.com/pluginpool/pluginpool/sdk/proto"
)

func TestPoolTiers(t *testing.T) {
	for _, n := range []int{0, 1, 255, 256, 257, 4096, 100_000, 1 << 20} {
		b := Pool.Get(n)
		if len(*b) != n {
			t.Fatalf("Get(%d): len %d", n, len(*b))
		}
		if c := cap(*b); c < n || c&(c-1) != 0 {
			t.Fatalf("Get(%d): cap %d is not a power of two >= n", n, c)
		}
		Pool.Put(b)
	}
	odd := make([]byte, 300)
	Pool.Put(&odd) // not a power of two: dropped, never handed out again
	if b := Pool.Get(300); cap(*b) != 512 {
		t.Fatalf("Get(300) after Put of a 300-byte buffer: cap %d, want 512", cap(*b))
	}
}

func TestCodecRoundTrip(t *testing.T) {
	in := &workerpb.Batch{Seq: 7, Data: bytes.Repeat([]byte("x"), 200_000), Ends: []uint32{100_000, 200_000}}
	data, err := Codec.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out workerpb.Batch
	if err := Codec.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	data.Free()
	// The decoded message must not alias a buffer that went back to the pool.
	b := Pool.Get(300_000)
	copy(*b, bytes.Repeat([]byte("y"), 300_000))
	if !proto.Equal(in, &out) {
		t.Fatal("round trip changed the message")
	}
	Pool.Put(b)
	if _, err := Codec.Marshal("not a message"); err == nil {
		t.Fatal("Marshal accepted a string")
	}
}

// The hand-written Batch codec must be invisible: the bytes it writes are
// the generated code's, and what it reads from any bytes is what the
// generated code reads (or both fail).
func FuzzBatchCodec(f *testing.F) {
	f.Add(uint64(1), uint32(0), []byte("12345"), []byte{1, 3, 5}, []byte{}, uint64(7), uint32(1), false, []byte{})
	f.Add(uint64(1<<40), uint32(3), []byte{}, []byte{200, 1, 255, 255, 255, 255, 15}, []byte{1, 2, 3}, uint64(0), uint32(0), true, []byte{0x08, 0x96, 0x01})
	f.Add(uint64(0), uint32(0), []byte(nil), []byte(nil), []byte(nil), uint64(0), uint32(0), false, []byte{0x22, 0x03, 0x01, 0x80, 0x01, 0x20, 0x05, 0x1a, 0x01, 'x', 0x42, 0x00})
	f.Fuzz(func(t *testing.T, seq uint64, first uint32, data, ends, ids []byte, base uint64, attempt uint32, cancel bool, raw []byte) {
		b := &workerpb.Batch{Seq: seq, First: first, Data: data, BaseId: base, Attempt: attempt, Cancel: cancel}
		for i := 0; i+4 <= len(ends); i += 4 {
			b.Ends = append(b.Ends, uint32(ends[i])|uint32(ends[i+1])<<8|uint32(ends[i+2])<<16|uint32(ends[i+3])<<24)
		}
		for i := 0; i+2 <= len(ids); i += 2 {
			b.Ids = append(b.Ids, uint64(ids[i])<<(ids[i+1]%57))
		}
		got, err := Codec.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := proto.MarshalOptions{Deterministic: true}.Marshal(b)
		if !bytes.Equal(got.Materialize(), want) {
			t.Fatalf("Marshal(%v)\n got %x\nwant %x", b, got.Materialize(), want)
		}
		checkDecode(t, got.Materialize())
		checkDecode(t, raw)
		checkDecode(t, append(want, raw...))
	})
}

// checkDecode decodes buf with Codec and with proto.Unmarshal.
func checkDecode(t *testing.T, buf []byte) {
	t.Helper()
	var got, want workerpb.Batch
	errGot := Codec.Unmarshal(mem.BufferSlice{mem.SliceBuffer(buf)}, &got)
	errWant := proto.Unmarshal(buf, &want)
	if (errGot == nil) != (errWant == nil) {
		t.Fatalf("decode %x: Codec error %v, proto error %v", buf, errGot, errWant)
	}
	if errGot == nil && !proto.Equal(&got, &want) {
		t.Fatalf("decode %x:\n got %v\nwant %v", buf, &got, &want)
	}
}

func TestBatchCodecErrorsAndOutput(t *testing.T) {
	b := &workerpb.Batch{Seq: 9, Data: []byte("1x"), Ends: []uint32{1, 1, 2},
		Errors: []*workerpb.ItemError{{Index: 1, Kind: workerpb.ErrorKind_ERROR_KIND_TASK, Message: []byte("bad")}},
		Output: []*workerpb.ItemOutput{{Index: 2, Lines: [][]byte{[]byte("hello")}}}}
	data, err := Codec.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	var got workerpb.Batch
	if err := Codec.Unmarshal(data, &got); err != nil || !proto.Equal(&got, b) {
		t.Fatalf("round trip: %v, %v; want %v", &got, err, b)
	}
}

// benchBatch is a 16,384-item batch of 7-digit numbers, as a 1M-item map
// sends them.
func benchBatch() *workerpb.Batch {
	b := &workerpb.Batch{Seq: 3, BaseId: 1 << 20, Attempt: 1}
	for i := range 16384 {
		b.Data = strconv.AppendInt(b.Data, int64(1_000_000+i), 10)
		b.Ends = append(b.Ends, uint32(len(b.Data)))
	}
	return b
}

// BenchmarkBatchMarshal and BenchmarkBatchUnmarshal report per item of a
// 16,384-item batch: the Run stream's codec cost on either side.
func BenchmarkBatchMarshal(b *testing.B) {
	batch := benchBatch()
	for b.Loop() {
		data, err := Codec.Marshal(batch)
		if err != nil {
			b.Fatal(err)
		}
		data.Free()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(batch.Ends)), "ns/item")
}

func BenchmarkBatchUnmarshal(b *testing.B) {
	batch := benchBatch()
	data, err := Codec.Marshal(batch)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		var got workerpb.Batch
		if err := Codec.Unmarshal(data, &got); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(batch.Ends)), "ns/item")
}

// appendVarints and consumeVarints take one- to three-byte values two at
// a time: every pair of lengths, at the edges, against protowire.
func TestVarintsEdges(t *testing.T) {
	edges := []uint32{0, 1, 127, 128, 16383, 16384, 100_000, 1<<21 - 1, 1 << 21, 1<<28 - 1, 1 << 28, math.MaxUint32}
	var ends []uint32
	for _, a := range edges {
		for _, b := range edges {
			ends = append(ends, a, b)
		}
	}
	for start := range 3 { // and at every offset from the start of the buffer
		for n := range len(ends) - start {
			vs := ends[start : start+n]
			var want []byte
			for _, v := range vs {
				want = protowire.AppendVarint(want, uint64(v))
			}
			size := 0
			for _, v := range vs {
				size += varintSize(uint64(v))
			}
			if got := endsSize(vs); got != size {
				t.Fatalf("endsSize(%v) = %d, want %d", vs, got, size)
			}
			sorted := slices.Clone(vs)
			slices.Sort(sorted)
			if got := endsSize(sorted); got != size {
				t.Fatalf("endsSize(%v) = %d, want %d", sorted, got, size)
			}
			got := appendVarints([]byte("x"), vs, size)
			if !bytes.Equal(got[1:], want) {
				t.Fatalf("appendVarints(%v) = %x, want %x", vs, got[1:], want)
			}
			back, ok := consumeVarints([]uint32{7}, want)
			if !ok || !slices.Equal(back[1:], vs) || back[0] != 7 {
				t.Fatalf("consumeVarints(%x) = %v, %v; want %v", want, back, ok, vs)
			}
		}
	}
}

// BenchmarkEndsSize sizes the ends of benchBatch: ns/item.
func BenchmarkEndsSize(b *testing.B) {
	ends := benchBatch().Ends
	n := 0
	for b.Loop() {
		n += endsSize(ends)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(ends)), "ns/item")
}

// BenchmarkVarints encodes and decodes the ends of benchBatch (three
// bytes each, mostly): ns/item for both.
func BenchmarkVarints(b *testing.B) {
	ends := benchBatch().Ends
	size := 0
	for _, e := range ends {
		size += varintSize(uint64(e))
	}
	var (
		buf []byte
		vs  []uint32
	)
	for b.Loop() {
		buf = appendVarints(buf[:0], ends, size)
		vs, _ = consumeVarints(vs[:0], buf)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(ends)), "ns/item")
}
