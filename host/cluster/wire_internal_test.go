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

// encodeAnswers encodes results as whole messages, each a fresh copy,
// handing them to the builder as the worker does: in runs, here of 1, 2,
// 3... items.
func encodeAnswers(seq uint64, results []pool.Result, delivery uint32, busy time.Duration, limit int) [][]byte {
	a := newAnswerBuilder(seq, "w1", delivery, limit)
	var msgs [][]byte
	send := func(last bool) bool {
		msgs = append(msgs, bytes.Clone(a.cut(last, busy)))
		return true
	}
	never := func() bool { return false }
	for run := 1; len(results) > 0; run++ {
		k := min(run, len(results))
		a.put(results[:k], never, send)
		results = results[k:]
	}
	send(true)
	return msgs
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
		if a.Last != (a.BusyNs != 0) || a.Last && time.Duration(a.BusyNs) != time.Second {
			t.Fatalf("busy %d", a.BusyNs)
		}
	}
	if next != len(results) {
		t.Fatalf("the parts cover %d items of %d", next, len(results))
	}
}

// put asks whether a part is due once per clockEvery items, before the
// clockEvery-th item of a part, however the results come in runs, and
// sends a part when told to; the parts cover every item, in order.
func TestAnswerPutAsksOncePer1024(t *testing.T) {
	const n = 5000
	results := make([]pool.Result, n)
	for i := range results {
		results[i].Value = []byte(strconv.Itoa(i))
	}
	results[2000] = pool.Result{Err: &pool.TaskError{Plugin: "p", Kind: pool.KindError, Message: "no"}}
	for _, run := range []int{1, 7, 1023, 1024, 4096, n} {
		a := newAnswerBuilder(1, "w1", 1, 1<<20)
		var asked []int // items added when due was asked
		var parts []int // items in each part
		added := 0
		due := func() bool {
			asked = append(asked, added+a.n)
			return len(asked) == 2 // the second ask sends a part
		}
		var msgs [][]byte
		send := func(last bool) bool {
			added += a.n
			parts = append(parts, a.n)
			msgs = append(msgs, bytes.Clone(a.cut(last, time.Millisecond)))
			return true
		}
		for rs := results; len(rs) > 0; rs = rs[min(run, len(rs)):] {
			if !a.put(rs[:min(run, len(rs))], due, send) {
				t.Fatal("put failed")
			}
		}
		send(true)
		// Asked before the 1024th and 2048th item of the first part;
		// the second sends it (2047 items), the next part starts over.
		want := []int{1023, 2047, 2047 + 1023, 2047 + 2047}
		if !slices.Equal(asked, want) || !slices.Equal(parts, []int{2047, n - 2047}) {
			t.Fatalf("runs of %d: asked at %v, want %v; parts %v", run, asked, want, parts)
		}
		next := 0
		for _, m := range msgs {
			d, err := decodeAnswer(m)
			if err != nil {
				t.Fatal(err)
			}
			for k := range d.len() {
				r := d.result(k)
				if i := next + k; i == 2000 && r.Err == nil || i != 2000 && string(r.Value) != strconv.Itoa(i) {
					t.Fatalf("runs of %d: item %d: %q %v", run, i, r.Value, r.Err)
				}
			}
			next += d.len()
		}
		if next != n {
			t.Fatalf("runs of %d: the parts cover %d items of %d", run, next, n)
		}
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
