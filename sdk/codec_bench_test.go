package sdk

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"

	"github.com/hashicorp/go-hclog"

	workerpb "github.com/pluginpool/pluginpool/sdk/proto"
)

func BenchmarkDecodeInt(b *testing.B) {
	in := []byte("-1234567")
	b.ReportAllocs()
	for b.Loop() {
		var n int
		if err := decodeJSON(in, &n); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendInt(b *testing.B) {
	out := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		n := -1234567
		var err error
		if out, err = appendJSON(out[:0], &n); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFuncTaskInt is the per-item cost of the SDK for a trivial task:
// decode an int, call the function, encode the result.
func BenchmarkFuncTaskInt(b *testing.B) {
	benchTask(b, Func(func(_ context.Context, n int) (int, error) { return 2 * n, nil }))
}

// BenchmarkFuncTaskNumber is the same with json.Number in and out: inputs
// alias the request, results are appended as they are.
func BenchmarkFuncTaskNumber(b *testing.B) {
	benchTask(b, Func(func(_ context.Context, n json.Number) (json.Number, error) { return n, nil }))
}

// benchTask runs task on one small int per op.
func benchTask(b *testing.B, task Task) {
	ctx := &taskCtx{parent: context.Background()}
	in := []byte("1234567")
	out := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if out, err = task.run(ctx, in, out[:0]); err != nil {
			b.Fatal(err)
		}
	}
}

// discardStream is a Worker_RunServer whose Send drops the response.
type discardStream struct{ fakeStream }

func (discardStream) Send(*workerpb.Batch) error { return nil }

// BenchmarkRunBatchInt runs a batch of 1024 ints through runBatch: the
// SDK's whole per-item cost inside a plugin, minus gRPC. One op is one item,
// so allocs/op counts allocations per item (the taskCtx at most). With a
// start ledger (two stores per item) and without.
func BenchmarkRunBatchInt(b *testing.B) {
	const n = 1024
	for _, c := range []struct {
		name   string
		ledger *uint64
	}{{"ledger", new(uint64)}, {"noledger", nil}} {
		b.Run(c.name, func(b *testing.B) {
			s := &server{plugin: Plugin{Task: Func(func(_ context.Context, n int) (int, error) { return 2 * n, nil })},
				logger: hclog.NewNullLogger(), flush: defaultFlush, ledger: c.ledger}
			r := &runner{s: s, ctx: context.Background(), stream: &discardStream{}, ledger: s.ledger}
			req := &workerpb.Batch{Seq: 1}
			for i := range n {
				req.Data = strconv.AppendInt(req.Data, int64(i), 10)
				req.Ends = append(req.Ends, uint32(len(req.Data)))
			}
			b.ReportAllocs()
			for i := 0; i < b.N; i += n {
				if err := r.runBatch(req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
