package pool_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pluginpool/pluginpool/host/pool"
	"github.com/pluginpool/pluginpool/internal/testkit"
)

// Cancelling a Map's context fails its unfinished items with the context's
// error and cancels their tasks; the workers live on and serve the next
// call.
func TestCancelMap(t *testing.T) {
	cfg := fixture(t, "hang")
	cfg.Workers = 2
	p := start(t, cfg)
	before := pids(p)

	// "sleep" returns only when its context is cancelled; no TaskTimeout.
	items := strs("a", "sleep", "sleep", "sleep", "sleep", "sleep", "sleep", "sleep", "sleep", "sleep")
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	var rs []pool.Result
	var err error
	bounded(t, "a cancelled Map", func() { rs, err = p.Map(ctx, items) })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Map error = %v; want context.Canceled", err)
	}
	if rs[0].Err != nil && !errors.Is(rs[0].Err, context.Canceled) {
		t.Errorf("item 0: %v", rs[0].Err)
	}
	for i, r := range rs[1:] {
		if !errors.Is(r.Err, context.Canceled) {
			t.Errorf("item %d: got %q, %v; want context.Canceled", i+1, r.Value, r.Err)
		}
	}

	// The cancelled tasks returned; the workers are free and the same.
	rs, err = mapAll(t, p, strs("x", "y", "z"))
	if err != nil || string(rs[2].Value) != `"z"` {
		t.Fatalf("Map after a cancelled one: %+v, %v", rs, err)
	}
	if !slices.Equal(pids(p), before) {
		t.Errorf("cancelling replaced a worker: pids %v -> %v", before, pids(p))
	}

	// Imap: cancelling ctx fails the unfinished items; iteration ends.
	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	// Every item Imap read yields one result. How many it reads before
	// the cancel depends on the batch size the pool has learned, so the
	// test counts them.
	n, read := 0, 0
	counted := func(yield func([]byte) bool) {
		for it := range sliceSeq(items) {
			read++
			if !yield(it) {
				return
			}
		}
	}
	bounded(t, "a cancelled Imap", func() {
		for i, r := range p.Imap(ctx, counted) {
			if i > 0 && !errors.Is(r.Err, context.Canceled) {
				t.Errorf("Imap item %d: %v; want context.Canceled", i, r.Err)
			}
			n++
		}
	})
	if n != read || n == 0 {
		t.Errorf("a cancelled Imap yielded %d results for %d items read", n, read)
	}
	if _, err := p.Apply(context.Background(), []byte(`"ok"`)); err != nil {
		t.Errorf("Apply after a cancelled Imap: %v", err)
	}
}

// An Apply's caller reads its answer off the lane itself (readDirect):
// cancelling it returns at once, also when the task ignores the
// cancellation, and the lane's next reader finds the stream intact.
func TestCancelApply(t *testing.T) {
	cfg := fixture(t, "hang")
	cfg.Workers = 2
	p := start(t, cfg)
	if !p.Info().Lane {
		t.Fatalf("Info = %+v: the Go SDK takes the lane", p.Info())
	}
	for _, item := range []string{"sleep", "hang"} {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(200*time.Millisecond, cancel)
		var err error
		bounded(t, "a cancelled Apply of "+item, func() { _, err = p.Apply(ctx, []byte(`"`+item+`"`)) })
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Apply(%q) cancelled: %v; want context.Canceled", item, err)
		}
	}
	// One worker still sleeps an hour in "hang"; the other serves, and
	// the one whose "sleep" was cancelled answered that on its lane.
	for i := range 20 {
		r, err := p.Apply(context.Background(), []byte(strconv.Quote(strconv.Itoa(i))))
		if err != nil || string(r.Value) != strconv.Quote(strconv.Itoa(i)) {
			t.Fatalf("Apply %d after the cancelled ones: %q, %v", i, r.Value, err)
		}
	}
}

// Close waits for calls in progress, then stops; later calls fail with
// ErrClosed; Close and Terminate are safe to repeat.
func TestCloseDrains(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	cfg := fixture(t, "slow")
	cfg.Workers = 2
	p, err := pool.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	items := make([][]byte, 40)
	for i := range items {
		items[i] = []byte("20") // 40 x 20 ms over two workers
	}
	done := mapAsync(p, items)
	waitUntil(t, "the Map to make progress", func() bool { return p.Stats().Succeeded > 0 })
	bounded(t, "Close", func() {
		if err := p.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	var m mapped
	bounded(t, "Map during Close", func() { m = <-done })
	if m.err != nil {
		t.Fatalf("Map during Close: %v", m.err)
	}
	for i, r := range m.rs {
		if string(r.Value) != "20" {
			t.Errorf("item %d: got %q, %v", i, r.Value, r.Err)
		}
	}
	checkClosed(t, p)
	bounded(t, "Close, Terminate again", func() {
		if err := p.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
		if err := p.Terminate(); err != nil {
			t.Errorf("Terminate after Close: %v", err)
		}
	})
	if live := processes(t, cfg); len(live) > 0 {
		t.Errorf("plugin processes alive after Close: %v", live)
	}
}

// Terminate kills at once, even workers stuck in tasks that ignore
// cancellation, and fails the unfinished items with ErrClosed.
func TestTerminate(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	cfg := fixture(t, "hang")
	cfg.Workers = 2
	p, err := pool.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan []pool.Result, 1)
	go func() {
		rs, _ := p.Map(context.Background(), strs("hang", "hang", "hang", "x"))
		done <- rs
	}()
	time.Sleep(200 * time.Millisecond) // let the hanging tasks start
	bounded(t, "Terminate", func() {
		if err := p.Terminate(); err != nil {
			t.Errorf("Terminate: %v", err)
		}
	})
	if live := processes(t, cfg); len(live) > 0 {
		t.Errorf("plugin processes alive after Terminate returned: %v", live)
	}
	var rs []pool.Result
	bounded(t, "Map during Terminate", func() { rs = <-done })
	for i, r := range rs[:3] {
		if !errors.Is(r.Err, pool.ErrClosed) {
			t.Errorf("item %d: %v; want ErrClosed", i, r.Err)
		}
	}
	checkClosed(t, p)
	bounded(t, "Terminate, Close again", func() {
		if err := p.Terminate(); err != nil {
			t.Errorf("second Terminate: %v", err)
		}
		if err := p.Close(); err != nil {
			t.Errorf("Close after Terminate: %v", err)
		}
	})
}

// checkClosed asserts every kind of call fails with ErrClosed, at once.
func checkClosed(t *testing.T, p *pool.Pool) {
	t.Helper()
	ctx := context.Background()
	rs, err := p.Map(ctx, testkit.Ints(3))
	if !errors.Is(err, pool.ErrClosed) || len(rs) != 3 || !errors.Is(rs[2].Err, pool.ErrClosed) {
		t.Errorf("Map after close: %+v, %v; want ErrClosed for each item", rs, err)
	}
	if _, err := p.Apply(ctx, []byte("1")); !errors.Is(err, pool.ErrClosed) {
		t.Errorf("Apply after close: %v; want ErrClosed", err)
	}
	n := 0
	for i, r := range p.Imap(ctx, sliceSeq(testkit.Ints(3))) {
		if i != n || !errors.Is(r.Err, pool.ErrClosed) {
			t.Errorf("Imap after close: item %d: %v; want ErrClosed", i, r.Err)
		}
		n++
	}
	for _, r := range p.ImapUnordered(ctx, sliceSeq(testkit.Ints(3))) {
		if !errors.Is(r.Err, pool.ErrClosed) {
			t.Errorf("ImapUnordered after close: %v; want ErrClosed", r.Err)
		}
		n++
	}
	if n != 6 {
		t.Errorf("Imap and ImapUnordered after close yielded %d results for 6 items", n)
	}
}
