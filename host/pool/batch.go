package pool

import (
	"sync/atomic"
	"time"

	workerpb "github.com/pluginpool/pluginpool/sdk/proto"
)

// A batch is a run of items sent to a worker as one message. A job cuts
// root batches from its input; a root keeps the job's results for its items
// until every one is answered. Items a crash left unanswered are re-sent in
// retry batches that point at their root.
type batch struct {
	job  *job
	root *batch  // the root a retry batch belongs to; nil for a root
	pos  []int32 // retry batches: each item's position in root

	// Items: either src (Map inputs, retry batches) or data/ends (batches
	// the Imap feeder filled). encode builds data/ends from src.
	src     [][]byte
	data    []byte
	ends    []uint32
	attempt int  // which run this is for every item in the batch (1 = first)
	single  bool // a quarantined item: sent only to a worker with nothing else in flight

	// Root only. index and seq are fixed at cut; results and pending are
	// guarded by job.mu; runs by Pool.mu.
	index   int        // job-wide index of item 0
	rootSeq int        // the order the job cut it in
	baseID  uint64     // task id of item 0
	results []Result   // one per item; an Imap root's only once an item needs one (see vals)
	vals    []valueRun // Imap root: runs of plain values, answered but not copied into results
	pending int        // items not yet resolved
	got     []uint64   // bit i: item i is resolved
	got1    [1]uint64  // got's array for a root of up to 64 items
	runs    []int32    // runs counted per item: ended without an answer, or asked for a retry; nil until one
	alone   []bool     // quarantined items (crash.go); nil with runs

	// Open Imap batches: items published by the feeder, and the claimed
	// bit (see feed.go).
	fill atomic.Uint64
	// tooLarge is set when an item over MaxItemBytes may be among the
	// batch's, before that item is published: sendable looks for them only
	// then.
	tooLarge atomic.Bool

	// Per send, guarded by Pool.mu.
	w      *worker
	seq    uint64
	done   int // items answered so far; answers come in order
	sentAt time.Time
}

// valueRun is a run of plain values, as a plugin answered them, for root
// positions start.. (one per end). An Imap root keeps its answers so, and
// builds Results from them only as its consumer takes them (results): a
// 64-byte Result stored per item into a results array of up to 1 MB, and
// read back from it later, missed the cache twice and took ~15% of the
// host's CPU in a 1M-item Imap.
type valueRun struct {
	start int
	data  []byte
	ends  []uint32
}

func (b *batch) len() int {
	if b.src != nil {
		return len(b.src)
	}
	return len(b.ends)
}

func (b *batch) item(i int) []byte {
	if b.src != nil {
		return b.src[i]
	}
	start := uint32(0)
	if i > 0 {
		start = b.ends[i-1]
	}
	return b.data[start:b.ends[i]]
}

// top returns the root batch b belongs to.
func (b *batch) top() *batch {
	if b.root != nil {
		return b.root
	}
	return b
}

// rootPos maps item i of b to its position in b.top().
func (b *batch) rootPos(i int) int {
	if b.pos != nil {
		return int(b.pos[i])
	}
	return i
}

// request encodes b as a Run request, into req when it is not nil.
// Called by the worker's sender, outside the pool lock: for Map batches
// this is where items are copied.
func (b *batch) request(req *workerpb.Batch) *workerpb.Batch {
	if b.data == nil && b.src != nil {
		n := 0
		for _, it := range b.src {
			n += len(it)
		}
		b.data = make([]byte, 0, n)
		b.ends = make([]uint32, 0, len(b.src))
		for _, it := range b.src {
			b.data = append(b.data, it...)
			b.ends = append(b.ends, uint32(len(b.data)))
		}
	}
	if req == nil {
		req = new(workerpb.Batch)
	}
	*req = workerpb.Batch{Seq: b.seq, Data: b.data, Ends: b.ends, Attempt: uint32(b.attempt)}
	root := b.top()
	if b.pos == nil {
		req.BaseId = root.baseID
	} else {
		req.Ids = make([]uint64, len(b.pos))
		for i, p := range b.pos {
			req.Ids[i] = root.baseID + uint64(p)
		}
	}
	return req
}

// mark records that root item i is resolved; has reports it.
func (b *batch) mark(i int)     { b.got[i>>6] |= 1 << (i & 63) }
func (b *batch) has(i int) bool { return b.got[i>>6]&(1<<(i&63)) != 0 }

// markRange marks root items [from, to) resolved.
func (b *batch) markRange(from, to int) {
	for i := from; i < to; {
		if i&63 == 0 && to-i >= 64 {
			b.got[i>>6] = ^uint64(0)
			i += 64
			continue
		}
		b.mark(i)
		i++
	}
}

// runLen is how many Results an Imap root builds at a time for its
// consumer (16 KB: they are written and read while in the cache).
const runLen = 256

// A sink takes an Imap job's results in runs, in order or as completed:
// results gets the job index of a run and its Results; values, if set,
// gets runs of plain values as the plugin sent them (data cut at ends),
// for a caller that reads them without a Result per item (the typed Map).
type sink struct {
	results func(i0 int, rs []Result) bool
	values  func(i0 int, data []byte, ends []uint32) bool
}

// yieldRuns hands the results of the complete root b to s in order: its
// runs of plain values to s.values if it is set, the rest as Results built
// in *buf (reused across calls; runs are at most runLen long). It reports
// false when s did. The caller owns b: it is complete, and nothing writes
// to it any more.
func (b *batch) yieldRuns(buf *[]Result, s sink) bool {
	n, yield := b.len(), s.results
	if len(b.vals) == 0 {
		return yieldChunks(b.index, b.results[:n], yield)
	}
	if cap(*buf) == 0 {
		*buf = make([]Result, min(n, runLen))
	}
	run := (*buf)[:cap(*buf)]
	// Answers come in order per send, but a root's items may have been
	// split between sends (a partial batch taken by an idle worker).
	vals := b.vals
	for i := 1; i < len(vals); i++ {
		for k := i; k > 0 && vals[k].start < vals[k-1].start; k-- {
			vals[k], vals[k-1] = vals[k-1], vals[k]
		}
	}
	k, at := 0, 0 // results in run; root position of the next one
	flush := func() bool {
		ok := yield(b.index+at-k, run[:k])
		k = 0
		return ok
	}
	for v := 0; at < n; {
		if v < len(vals) && vals[v].start == at {
			r := &vals[v]
			v++
			if s.values != nil {
				if k > 0 && !flush() {
					return false
				}
				if !s.values(b.index+at, r.data, r.ends) {
					return false
				}
				at += len(r.ends)
				continue
			}
			prev := uint32(0)
			for _, end := range r.ends {
				if k == len(run) && !flush() {
					return false
				}
				if end > prev {
					run[k] = Result{Value: r.data[prev:end:end]}
				} else {
					run[k] = Result{}
				}
				prev = end
				k++
				at++
			}
			continue
		}
		if k == len(run) && !flush() {
			return false
		}
		run[k] = b.results[at]
		k++
		at++
	}
	return k == 0 || flush()
}

// yieldChunks hands rs, the results of items i0.., to yield in runs of at
// most runLen. It reports false when yield did.
func yieldChunks(i0 int, rs []Result, yield func(int, []Result) bool) bool {
	for k := 0; k < len(rs); k += runLen {
		if !yield(i0+k, rs[k:min(len(rs), k+runLen)]) {
			return false
		}
	}
	return true
}
