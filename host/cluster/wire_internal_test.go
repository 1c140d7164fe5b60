package cluster

import (
	"bytes"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/pluginpool/pluginpool/host/cluster/clusterpb"
	"github.com/pluginpool/pluginpool/host/pool"
)

// encodeAnswers encodes results as whole messages, each a fresh copy.
func encodeAnswers(seq uint64, results []pool.Result, delivery uint32, busy time.Duration, limit int) [][]byte {
	a := newAnswerBuilder(seq, "w1", delivery, limit)
	var msgs [][]byte
	for _, r := range results {
		if a.full(&r) {
			msgs = append(msgs, bytes.Clone(a.cut(false, 0)))
		}
		a.add(r)
	}
	return append(msgs, bytes.Clone(a.cut(true, busy)))
}

// Answers split at the payload limit into contiguous parts; the host
// reads back every value, error (as the pool's type) and printed line.
func TestAnswerRoundTrip(t *testing.T) {
	results := make([]pool.Result, 1000)
	for i := range results {
		results[i].Value = []byte(strconv.Itoa(i) + strings.Repeat(" ", 90))
	}
	results[3] = pool.Result{Err: &pool.TaskError{Plugin: "p", Kind: pool.KindPanic, Message: "boom", Attempt: 2}}
	results[4] = pool.Result{Err: &pool.CrashError{Plugin: "p", Pid: 42, Exit: "signal: killed", Attempts: 3, Stderr: []string{"a", "b"}}}
	results[5] = pool.Result{Value: nil, Output: []string{"line 1", "line 2"}}
	results[6] = pool.Result{Value: bytes.Repeat([]byte("x"), 70<<10)} // over the limit alone
	limit := 64 << 10
	msgs := encodeAnswers(7, results, 2, time.Second, limit)
	if len(msgs) < 2 {
		t.Fatalf("%d messages; want the answer split", len(msgs))
	}
	next := 0
	for i, m := range msgs {
		if len(m) > limit {
			t.Fatalf("message %d is %d bytes, over the %d limit", i, len(m), limit)
		}
		a, err := decodeAnswer(m)
		if err != nil {
			t.Fatal(err)
		}
		if a.Seq != 7 || int(a.First) != next || a.Delivery != 2 || a.Worker != "w1" || a.Last != (i == len(msgs)-1) {
			t.Fatalf("message %d: seq %d first %d delivery %d last %v", i, a.Seq, a.First, a.Delivery, a.Last)
		}
		for k := range a.len() {
			r, want := a.result(k), results[next+k]
			switch next + k {
			case 3:
				var te *pool.TaskError
				if !errors.As(r.Err, &te) || te.Kind != pool.KindPanic || te.Message != "boom" || te.Attempt != 2 {
					t.Fatalf("item 3: %v", r.Err)
				}
			case 4:
				var ce *pool.CrashError
				if !errors.As(r.Err, &ce) || ce.Pid != 42 || !slices.Equal(ce.Stderr, []string{"a", "b"}) || !strings.Contains(r.Err.Error(), "on worker w1") {
					t.Fatalf("item 4: %v", r.Err)
				}
			case 6:
				var pe *PayloadError
				if !errors.As(r.Err, &pe) || !pe.Result || !errors.Is(r.Err, pool.ErrTooLarge) {
					t.Fatalf("item 6: %v", r.Err)
				}
			default:
				if r.Err != nil || !bytes.Equal(r.Value, want.Value) || !slices.Equal(r.Output, want.Output) {
					t.Fatalf("item %d: %q %q %v", next+k, r.Value, r.Output, r.Err)
				}
			}
		}
		next += a.len()
		if a.Last && time.Duration(a.BusyNs) != time.Second {
			t.Fatalf("busy %d", a.BusyNs)
		}
	}
	if next != len(results) {
		t.Fatalf("the parts cover %d items of %d", next, len(results))
	}
}

// decodeTask reads what proto.Marshal wrote, aliasing the items.
func TestDecodeTask(t *testing.T) {
	data, err := proto.Marshal(&clusterpb.Task{Seq: 3, First: 99, Data: []byte("1234"), Ends: []uint32{1, 1, 4}})
	if err != nil {
		t.Fatal(err)
	}
	if mine := appendTask(nil, 3, 99, []byte("1234"), []uint32{1, 1, 4}); !bytes.Equal(mine, data) {
		t.Fatalf("appendTask wrote %x, proto.Marshal %x", mine, data)
	}
	task, err := decodeTask(data)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for it := range items(task) {
		got = append(got, string(it))
	}
	if task.Seq != 3 || task.First != 99 || !slices.Equal(got, []string{"1", "", "234"}) {
		t.Fatalf("decoded %d %d %q", task.Seq, task.First, got)
	}
	for _, bad := range [][]byte{{0x22, 0x02, 0x05, 0x01}, {0xff}, append(slices.Clone(data[:len(data)-1]), 9)} {
		if _, err := decodeTask(bad); err == nil {
			t.Fatalf("decodeTask(%x): no error", bad)
		}
	}
}
