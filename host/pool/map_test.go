package pool_test

import (
	"context"
	"errors"
	"iter"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pluginpool/pluginpool/host/pool"
	"github.com/pluginpool/pluginpool/internal/testkit"
)

func TestMapOrdered(t *testing.T) {
	p := start(t, fixture(t, "double"))
	rs, err := mapAll(t, p, testkit.Ints(20000))
	if err != nil {
		t.Fatal(err)
	}
	testkit.CheckDoubled(t, rs)
	st := p.Stats()
	if st.Succeeded != 20000 || st.Failed != 0 || st.Restarts != 0 {
		t.Errorf("stats: %+v", st)
	}
}

func TestMapEmpty(t *testing.T) {
	p := start(t, fixture(t, "double"))
	for _, items := range [][][]byte{nil, {}} {
		rs, err := mapAll(t, p, items)
		if err != nil || len(rs) != 0 {
			t.Errorf("Map(%v) = %v, %v; want no results, nil", items, rs, err)
		}
	}
	n := 0
	for range p.Imap(context.Background(), func(func([]byte) bool) {}) {
		n++
	}
	for range p.ImapUnordered(context.Background(), func(func([]byte) bool) {}) {
		n++
	}
	if n != 0 {
		t.Errorf("Imap over no items yielded %d results", n)
	}
}

func TestApply(t *testing.T) {
	p := start(t, fixture(t, "double"))
	r, err := p.Apply(context.Background(), []byte("21"))
	if err != nil || string(r.Value) != "42" {
		t.Fatalf("Apply(21) = %q, %v; want 42", r.Value, err)
	}
	// Apply's error is the result's.
	r, err = p.Apply(context.Background(), []byte(`"x"`))
	if err == nil || err != r.Err {
		t.Fatalf("Apply(\"x\") = %q, %v (result err %v); want a decode error", r.Value, err, r.Err)
	}
	info := p.Info()
	if info.Name != "double" || info.Version != "1.2.3" || !info.Idempotent || info.SDK == "" {
		t.Errorf("Info() = %+v", info)
	}
}

// Concurrent calls share the workers and each gets its own results.
func TestMapConcurrent(t *testing.T) {
	p := start(t, fixture(t, "double"))
	const calls, n = 8, 3000
	var wg sync.WaitGroup
	errs := make(chan string, calls*n)
	for c := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			items := make([][]byte, n)
			for i := range items {
				items[i] = []byte(strconv.Itoa(c*n + i))
			}
			ctx, cancel := context.WithTimeout(context.Background(), hangBound)
			defer cancel()
			var rs []pool.Result
			if c%2 == 0 {
				rs, _ = p.Map(ctx, items)
			} else {
				for i, r := range p.Imap(ctx, sliceSeq(items)) {
					if i != len(rs) {
						errs <- "Imap out of order"
					}
					rs = append(rs, r)
				}
			}
			for i, r := range rs {
				if want := strconv.Itoa(2 * (c*n + i)); string(r.Value) != want || r.Err != nil {
					errs <- "call " + strconv.Itoa(c) + " item " + strconv.Itoa(i) + ": got " + string(r.Value) + " want " + want
				}
			}
			if len(rs) != n {
				errs <- "call " + strconv.Itoa(c) + ": " + strconv.Itoa(len(rs)) + " results"
			}
		}()
	}
	wg.Wait()
	close(errs)
	k := 0
	for e := range errs {
		if k++; k <= 10 {
			t.Error(e)
		}
	}
}

func sliceSeq(items [][]byte) iter.Seq[[]byte] {
	return func(yield func([]byte) bool) {
		for _, it := range items {
			if !yield(it) {
				return
			}
		}
	}
}

// counter is an input of n ints (n < 0: endless) that counts how far it
// was pulled.
type counter struct{ pulled atomic.Int64 }

func (c *counter) seq(n int) iter.Seq[[]byte] {
	return func(yield func([]byte) bool) {
		for i := 0; n < 0 || i < n; i++ {
			c.pulled.Add(1)
			if !yield([]byte(strconv.Itoa(i))) {
				return
			}
		}
	}
}

// Imap yields in order and reads its input only a bounded window ahead of
// what was consumed: the pool holds at most 2*Workers*InFlight+2 batches
// plus the one being filled.
func TestImapOrderedLazy(t *testing.T) {
	cfg := fixture(t, "double")
	cfg.Workers, cfg.InFlight, cfg.ChunkSize = 2, 2, 8
	p := start(t, cfg)
	window := int64((2*cfg.Workers*cfg.InFlight + 4) * cfg.ChunkSize)

	var in counter
	ctx, cancel := context.WithTimeout(context.Background(), hangBound)
	defer cancel()
	const n = 5000
	next, maxAhead := 0, int64(0)
	for i, r := range p.Imap(ctx, in.seq(n)) {
		if i != next {
			t.Fatalf("got index %d, want %d", i, next)
		}
		next++
		if r.Err != nil || string(r.Value) != strconv.Itoa(2*i) {
			t.Fatalf("item %d: got %q, %v", i, r.Value, r.Err)
		}
		ahead := in.pulled.Load() - int64(next)
		maxAhead = max(maxAhead, ahead)
		if ahead > window {
			t.Fatalf("after %d results the input was pulled %d items ahead; the window is %d", next, ahead, window)
		}
		if i == 100 {
			// Stall the consumer: the pool must stop reading, not
			// buffer the rest of the input.
			time.Sleep(200 * time.Millisecond)
			if ahead := in.pulled.Load() - int64(next); ahead > window {
				t.Fatalf("while the consumer stalled the input was pulled %d items ahead; the window is %d", ahead, window)
			}
		}
	}
	if next != n {
		t.Fatalf("Imap yielded %d results for %d items", next, n)
	}
	t.Logf("read at most %d items ahead (bound %d)", maxAhead, window)
}

// An endless input proves laziness outright: Imap (and ImapUnordered,
// ImapBatches) must yield without reading it all, and breaking out of the
// loop ends the iteration without leaking goroutines; the pool still
// serves calls afterwards.
func TestImapBreakEarly(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	cfg := fixture(t, "double")
	cfg.ChunkSize = 16
	p, err := pool.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	var in counter
	ctx, cancel := context.WithTimeout(context.Background(), hangBound)
	defer cancel()
	got := 0
	bounded(t, "Imap loop with break", func() {
		for i, r := range p.Imap(ctx, in.seq(-1)) {
			if i != got || string(r.Value) != strconv.Itoa(2*i) {
				t.Errorf("item %d: got index %d value %q err %v", got, i, r.Value, r.Err)
			}
			if got++; got == 500 {
				break
			}
		}
	})
	if ctx.Err() != nil {
		t.Fatal("Imap ran into the deadline")
	}
	pulled := in.pulled.Load()
	time.Sleep(50 * time.Millisecond)
	if in.pulled.Load() != pulled {
		t.Errorf("the input was still read after the loop ended: %d, then %d items", pulled, in.pulled.Load())
	}

	// Unordered too.
	var in2 counter
	got = 0
	bounded(t, "ImapUnordered loop with break", func() {
		for range p.ImapUnordered(ctx, in2.seq(-1)) {
			if got++; got == 500 {
				break
			}
		}
	})

	// And whole batches: breaking after a run stops the reading too.
	var in3 counter
	got = 0
	bounded(t, "ImapBatches loop with break", func() {
		for i, rs := range p.ImapBatches(ctx, in3.seq(-1)) {
			for k, r := range rs {
				if i+k != got || string(r.Value) != strconv.Itoa(2*got) {
					t.Fatalf("item %d: got index %d value %q err %v", got, i+k, r.Value, r.Err)
				}
				got++
			}
			if got >= 500 {
				break
			}
		}
	})
	pulled = in3.pulled.Load()
	time.Sleep(50 * time.Millisecond)
	if in3.pulled.Load() != pulled {
		t.Errorf("ImapBatches: the input was still read after the loop ended: %d, then %d items", pulled, in3.pulled.Load())
	}

	rs, err := mapAll(t, p, testkit.Ints(1000))
	if err != nil {
		t.Fatal(err)
	}
	testkit.CheckDoubled(t, rs)
	bounded(t, "Close", func() {
		if err := p.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
}

func TestImapUnordered(t *testing.T) {
	cfg := fixture(t, "double")
	p := start(t, cfg)
	const n = 20000
	seen := make([]int, n)
	ctx, cancel := context.WithTimeout(context.Background(), hangBound)
	defer cancel()
	var in counter
	for i, r := range p.ImapUnordered(ctx, in.seq(n)) {
		if i < 0 || i >= n {
			t.Fatalf("index %d out of range", i)
		}
		seen[i]++
		if r.Err != nil || string(r.Value) != strconv.Itoa(2*i) {
			t.Fatalf("item %d: got %q, %v", i, r.Value, r.Err)
		}
	}
	for i, k := range seen {
		if k != 1 {
			t.Fatalf("index %d yielded %d times", i, k)
		}
	}
}

// The ordered reorder buffer holds results that complete out of order
// (two workers, tasks of different lengths) while the consumer is slow;
// nothing is lost or reordered.
func TestImapConsumerSlowerThanPool(t *testing.T) {
	cfg := fixture(t, "slow")
	cfg.Workers, cfg.ChunkSize = 2, 1
	p := start(t, cfg)
	items := make([][]byte, 30)
	for i := range items {
		items[i] = []byte(strconv.Itoa((i * 7) % 11)) // 0..10 ms
	}
	ctx, cancel := context.WithTimeout(context.Background(), hangBound)
	defer cancel()
	next := 0
	for i, r := range p.Imap(ctx, sliceSeq(items)) {
		if i != next || string(r.Value) != string(items[i]) {
			t.Fatalf("result %d: index %d value %q err %v", next, i, r.Value, r.Err)
		}
		next++
		time.Sleep(3 * time.Millisecond)
	}
	if next != len(items) {
		t.Fatalf("%d results for %d items", next, len(items))
	}
}

// ImapBatches yields runs of consecutive results in input order, each item
// in exactly one run, failed items in place with their errors; the
// results may be kept after their run, the runs' slices not.
func TestImapBatches(t *testing.T) {
	cfg := fixture(t, "errors")
	// Batches of 1000, in which a failed item makes the whole answer take
	// the slow path: runs stay at most 256 long all the same.
	cfg.Workers, cfg.ChunkSize = 2, 1000
	p := start(t, cfg)
	const n = 5000
	items := testkit.Ints(n)
	for i := 7; i < n; i += 501 {
		items[i] = []byte(`"fail"`)
	}
	ctx, cancel := context.WithTimeout(context.Background(), hangBound)
	defer cancel()
	var kept []pool.Result
	runs := 0
	for i, rs := range p.ImapBatches(ctx, sliceSeq(items)) {
		if i != len(kept) || len(rs) == 0 || len(rs) > 256 {
			t.Fatalf("run %d: index %d with %d results after %d results; want index %d, 1 to 256 results", runs, i, len(rs), len(kept), len(kept))
		}
		runs++
		kept = append(kept, rs...)
	}
	if len(kept) != n || runs < 2 {
		t.Fatalf("%d results in %d runs for %d items; want every item, in more than one run", len(kept), runs, n)
	}
	for i, r := range kept {
		if string(items[i]) == `"fail"` {
			if !errors.Is(r.Err, pool.ErrTask) || !strings.Contains(r.Err.Error(), "failed on purpose") {
				t.Errorf("item %d: got %q, %v; want the task's error", i, r.Value, r.Err)
			}
		} else if r.Err != nil || string(r.Value) != strconv.Itoa(2*i) {
			t.Errorf("item %d: got %q, %v; want %d", i, r.Value, r.Err, 2*i)
		}
	}
	t.Logf("%d items in %d runs", n, runs)
}

// ImapRuns takes its items in runs of any length, each reused for the
// next (as a reader's buffer would be), and yields every item's result in
// order; cancelled while it reads, every item it read still gets one.
func TestImapRuns(t *testing.T) {
	p := start(t, fixture(t, "echo"))
	const n = 20_000
	want := make([]string, n)
	for i := range want {
		want[i] = strconv.Itoa(i)
		if i%3001 == 7 {
			want[i] = strconv.Quote(strings.Repeat("x", 300_000+i)) // more than a batch's room
		}
	}
	// runs yields want in runs of 1, 2, ... 300, 1, ..., in one reused
	// buffer, and counts what it handed over.
	var read atomic.Int64
	var cancelAt atomic.Int64        // once this many items are read (if set),
	var interrupt context.CancelFunc // the input calls this
	runs := func(yield func([][]byte) bool) {
		var buf []byte
		var run [][]byte
		for i, size := 0, 1; i < n; size = size%300 + 1 {
			buf, run = buf[:0], run[:0]
			for k := i; k < min(n, i+size); k++ {
				buf = append(buf, want[k]...)
			}
			start := 0
			for k := i; k < min(n, i+size); k++ {
				run = append(run, buf[start:start+len(want[k])])
				start += len(want[k])
			}
			i += len(run)
			if at := cancelAt.Load(); read.Add(int64(len(run))) >= at && at > 0 {
				interrupt()
			}
			if !yield(run) {
				return
			}
			clear(buf) // the pool copied them
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), hangBound)
	defer cancel()
	got := 0
	for i, rs := range p.ImapRuns(ctx, runs) {
		for k, r := range rs {
			if i+k != got || r.Err != nil || string(r.Value) != want[got] {
				t.Fatalf("result %d at %d: %.20q, %v; want %.20q", got, i+k, r.Value, r.Err, want[got])
			}
			got++
		}
	}
	if got != n {
		t.Fatalf("%d results for %d items", got, n)
	}

	cctx, stop := context.WithCancel(ctx)
	defer stop()
	read.Store(0)
	interrupt = stop
	cancelAt.Store(5000)
	got = 0
	for _, rs := range p.ImapRuns(cctx, runs) {
		got += len(rs)
	}
	if int64(got) != read.Load() || got >= n {
		t.Fatalf("cancelled while reading: %d results for %d items read (of %d)", got, read.Load(), n)
	}

	// Cancelled by the caller (by then the pool may have read them all).
	cancelAt.Store(0)
	for range 5 {
		cctx, stop := context.WithCancel(ctx)
		read.Store(0)
		got = 0
		for _, rs := range p.ImapRuns(cctx, runs) {
			if got += len(rs); got > 1000 {
				stop()
			}
		}
		stop()
		if int64(got) != read.Load() {
			t.Fatalf("cancelled: %d results for %d items read (of %d)", got, read.Load(), n)
		}
	}
}
