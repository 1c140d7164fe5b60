package sdk

import (
	"context"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/hashicorp/go-hclog"

	workerpb "github.com/pluginpool/pluginpool/sdk/proto"
)

// FuzzRequestBatch feeds the runner request batches built from arbitrary
// data, item boundaries and ids. A batch whose boundaries run backwards
// or past the data, or whose ids do not match its items, must end the
// stream with an error before any item runs; any other batch must be
// answered item by item, each item being exactly its slice of the data
// under its own id. Nothing may panic.
func FuzzRequestBatch(f *testing.F) {
	u16s := func(v ...uint16) []byte {
		var b []byte
		for _, x := range v {
			b = binary.LittleEndian.AppendUint16(b, x)
		}
		return b
	}
	u64s := func(v ...uint64) []byte {
		var b []byte
		for _, x := range v {
			b = binary.LittleEndian.AppendUint64(b, x)
		}
		return b
	}
	f.Add([]byte("123"), u16s(1, 2, 3), []byte(nil), uint64(7))
	f.Add([]byte("123"), u16s(1, 1, 3), u64s(9, 4, 1), uint64(0))
	f.Add([]byte("12"), u16s(1, 5), []byte(nil), uint64(0))     // past the data
	f.Add([]byte("12"), u16s(2, 1), []byte(nil), uint64(0))     // backwards
	f.Add([]byte("12"), u16s(1, 2), u64s(1), uint64(0))         // an id short
	f.Add([]byte(nil), []byte(nil), []byte(nil), uint64(1<<63)) // no items
	f.Fuzz(func(t *testing.T, data, endBytes, idBytes []byte, base uint64) {
		b := &workerpb.Batch{Seq: 1, Data: data, BaseId: base}
		for i := 0; i+2 <= len(endBytes); i += 2 {
			b.Ends = append(b.Ends, uint32(binary.LittleEndian.Uint16(endBytes[i:])))
		}
		for i := 0; i+8 <= len(idBytes); i += 8 {
			b.Ids = append(b.Ids, binary.LittleEndian.Uint64(idBytes[i:]))
		}
		valid := len(b.Ids) == 0 || len(b.Ids) == len(b.Ends)
		prev := uint32(0)
		for _, e := range b.Ends {
			valid = valid && e >= prev && int(e) <= len(data)
			prev = e
		}

		echo := Raw(func(ctx context.Context, in []byte) ([]byte, error) {
			return fmt.Appendf(nil, "%d:%s", TaskID(ctx), in), nil
		})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		stream := &fakeStream{ctx: ctx, out: make(chan *workerpb.Batch, 1)}
		s := &server{plugin: Plugin{Name: "fuzz", Task: echo}, logger: hclog.NewNullLogger()}
		r := &runner{s: s, ctx: ctx, stream: stream, stop: make(chan struct{})}
		err := r.runBatch(b)
		if !valid {
			if err == nil || len(stream.out) != 0 {
				t.Fatalf("malformed batch (ends %v, %d ids, %d bytes): error %v, %d answers; want an error and none", b.Ends, len(b.Ids), len(data), err, len(stream.out))
			}
			return
		}
		if err != nil {
			t.Fatalf("batch (ends %v, %d ids, %d bytes): %v", b.Ends, len(b.Ids), len(data), err)
		}
		resp := <-stream.out
		if len(resp.Ends) != len(b.Ends) || len(resp.Errors) != 0 {
			t.Fatalf("answer has %d items and %d errors for %d items", len(resp.Ends), len(resp.Errors), len(b.Ends))
		}
		start, got := uint32(0), uint32(0)
		for i, end := range b.Ends {
			id := base + uint64(i)
			if len(b.Ids) > 0 {
				id = b.Ids[i]
			}
			want := fmt.Sprintf("%d:%s", id, data[start:end])
			if r := string(resp.Data[got:resp.Ends[i]]); r != want {
				t.Fatalf("item %d answered %q, want %q", i, r, want)
			}
			start, got = end, resp.Ends[i]
		}
	})
}
