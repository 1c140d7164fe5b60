package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"runtime"
	"strconv"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/pluginpool/pluginpool/internal/codec"

	workerpb "github.com/pluginpool/pluginpool/sdk/proto"
)

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
// SDK's whole per-item cost inside a plugin, minus gRPC. One op is one
// batch; ns/item and allocs/item count per item (the taskCtx at most).
// With a start ledger (two stores per item) and without.
func BenchmarkRunBatchInt(b *testing.B) {
	for _, c := range []struct {
		name   string
		ledger *uint64
	}{{"ledger", new(uint64)}, {"noledger", nil}} {
		b.Run(c.name, func(b *testing.B) { benchRunBatch(b, c.ledger) })
	}
}

// benchRunBatch runs batches of runBatchItems 7-digit ints, b.N of them.
func benchRunBatch(b *testing.B, ledger *uint64) {
	benchRunBatchTask(b, ledger, Func(func(_ context.Context, n int) (int, error) { return 2 * n, nil }))
}

func benchRunBatchTask(b *testing.B, ledger *uint64, task Task) {
	s := &server{plugin: Plugin{Task: task}, logger: hclog.NewNullLogger(), flush: defaultFlush, ledger: ledger}
	r := &runner{s: s, ctx: context.Background(), stream: &discardStream{}, ledger: s.ledger}
	req := &workerpb.Batch{Seq: 1}
	for i := range runBatchItems {
		// 7 digits, as in a 1M-item map (make bench's W1 and W2).
		req.Data = strconv.AppendInt(req.Data, int64(1_000_000+i), 10)
		req.Ends = append(req.Ends, uint32(len(req.Data)))
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	mallocs := ms.Mallocs
	for b.Loop() {
		if err := r.runBatch(req); err != nil {
			b.Fatal(err)
		}
	}
	runtime.ReadMemStats(&ms)
	items := float64(b.N * runBatchItems)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/items, "ns/item")
	b.ReportMetric(float64(ms.Mallocs-mallocs)/items, "allocs/item")
}

const runBatchItems = 1024

// selfInt decodes and encodes itself, as the double plugin's number does
// (json.Unmarshaler and JSONAppender, a pointer in it).
type selfInt struct {
	i     int64
	isInt bool
	text  json.Number
}

func (n *selfInt) UnmarshalJSON(b []byte) error {
	i, ok := codec.ParseInt(b)
	if !ok {
		return errors.New("not an int")
	}
	*n = selfInt{i: i, isInt: true}
	return nil
}

func (n *selfInt) AppendJSON(b []byte) ([]byte, error) {
	if n.isInt {
		return codec.AppendInt(b, n.i), nil
	}
	return append(b, n.text...), nil
}

// BenchmarkFuncTaskSelf is the per-item cost of the SDK for a trivial
// task on a type that decodes and encodes itself, like the double
// plugin's.
func BenchmarkFuncTaskSelf(b *testing.B) {
	benchTask(b, Func(func(_ context.Context, n selfInt) (selfInt, error) {
		return selfInt{i: 2 * n.i, isInt: true}, nil
	}))
}

// BenchmarkRunBatchSelf is BenchmarkRunBatchInt's batch with
// BenchmarkFuncTaskSelf's task, and a start ledger.
func BenchmarkRunBatchSelf(b *testing.B) {
	benchRunBatchTask(b, new(uint64), Func(func(_ context.Context, n selfInt) (selfInt, error) {
		return selfInt{i: 2 * n.i, isInt: true}, nil
	}))
}
