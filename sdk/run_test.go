package sdk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	workerpb "github.com/pluginpool/pluginpool/sdk/proto"
)

// These tests drive server.Run, the SDK's own stream handler, through an
// in-memory stream: no process, no gRPC.

// fakeStream is a Worker_RunServer fed by the test. in is unbuffered, so a
// send to it returns only once Run's receiver has taken the message, and the
// next send only once the receiver has fully handled it (cancels included).
type fakeStream struct {
	grpc.ServerStream // nil: Run uses only Context, Send and Recv
	ctx               context.Context
	in                chan *workerpb.Batch
	out               chan *workerpb.Batch
}

func (f *fakeStream) Context() context.Context { return f.ctx }

func (f *fakeStream) Recv() (*workerpb.Batch, error) {
	select {
	case b, ok := <-f.in:
		if !ok {
			return nil, io.EOF
		}
		return b, nil
	case <-f.ctx.Done():
		return nil, f.ctx.Err()
	}
}

// Send copies: the runner reuses its response and buffers once Send returns,
// as gRPC allows.
func (f *fakeStream) Send(b *workerpb.Batch) error {
	c := proto.Clone(b).(*workerpb.Batch)
	select {
	case f.out <- c:
		return nil
	case <-f.ctx.Done():
		return f.ctx.Err()
	}
}

type harness struct {
	t      *testing.T
	stream *fakeStream
	cancel context.CancelFunc
	done   chan error
}

// startRun initialises a server for task and runs one stream on it until
// the test ends.
func startRun(t *testing.T, task Task, init *workerpb.InitRequest) *harness {
	t.Helper()
	return startServer(t, &server{plugin: Plugin{Name: "test", Task: task}, logger: hclog.NewNullLogger()}, init)
}

// startServer is startRun for a server the test built.
func startServer(t *testing.T, s *server, init *workerpb.InitRequest) *harness {
	t.Helper()
	if init != nil {
		if _, err := s.Init(t.Context(), init); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{
		t:      t,
		stream: &fakeStream{ctx: ctx, in: make(chan *workerpb.Batch), out: make(chan *workerpb.Batch, 1000)},
		cancel: cancel,
		done:   make(chan error, 1),
	}
	go func() { h.done <- s.Run(h.stream) }()
	t.Cleanup(func() {
		cancel()
		<-h.done
	})
	return h
}

func (h *harness) send(b *workerpb.Batch) {
	h.t.Helper()
	select {
	case h.stream.in <- b:
	case <-time.After(10 * time.Second):
		h.t.Fatalf("Run did not take batch %d", b.Seq)
	}
}

// batch builds a request batch from JSON items.
func batch(seq, baseID uint64, items ...string) *workerpb.Batch {
	b := &workerpb.Batch{Seq: seq, BaseId: baseID}
	for _, it := range items {
		b.Data = append(b.Data, it...)
		b.Ends = append(b.Ends, uint32(len(b.Data)))
	}
	return b
}

// answer is one request batch's answer, assembled from its responses.
type answer struct {
	responses []*workerpb.Batch
	values    []string // "" for an error or no value
	errs      map[uint32]*workerpb.ItemError
	lines     map[uint32][]string
}

// collect reads the responses for batch seq until they cover n items,
// checking the wire contract on the way: responses cover consecutive index
// ranges starting at 0; errors and output name indices inside their
// response; failed items carry no data.
func (h *harness) collect(seq uint64, n int) *answer {
	h.t.Helper()
	a := &answer{errs: map[uint32]*workerpb.ItemError{}, lines: map[uint32][]string{}}
	for len(a.values) < n {
		var r *workerpb.Batch
		select {
		case r = <-h.stream.out:
		case <-time.After(10 * time.Second):
			h.t.Fatalf("batch %d: got %d of %d items", seq, len(a.values), n)
		}
		a.responses = append(a.responses, r)
		if r.Seq != seq {
			h.t.Fatalf("response for seq %d, want %d", r.Seq, seq)
		}
		if int(r.First) != len(a.values) {
			h.t.Fatalf("batch %d: response starts at %d, want %d", seq, r.First, len(a.values))
		}
		if len(r.Ends) == 0 {
			h.t.Fatalf("batch %d: empty response", seq)
		}
		lo, hi := r.First, r.First+uint32(len(r.Ends))
		prev := uint32(0)
		for _, end := range r.Ends {
			a.values = append(a.values, string(r.Data[prev:end]))
			prev = end
		}
		if int(prev) != len(r.Data) {
			h.t.Errorf("batch %d: %d data bytes after the last item", seq, len(r.Data)-int(prev))
		}
		for _, e := range r.Errors {
			if e.Index < lo || e.Index >= hi {
				h.t.Errorf("batch %d: error for item %d in a response for %d..%d", seq, e.Index, lo, hi-1)
			}
			if a.values[e.Index] != "" {
				h.t.Errorf("batch %d: failed item %d has data %q", seq, e.Index, a.values[e.Index])
			}
			a.errs[e.Index] = e
		}
		for _, o := range r.Output {
			if o.Index < lo || o.Index >= hi {
				h.t.Errorf("batch %d: output for item %d in a response for %d..%d", seq, o.Index, lo, hi-1)
			}
			for _, l := range o.Lines {
				a.lines[o.Index] = append(a.lines[o.Index], string(l))
			}
		}
	}
	if len(a.values) != n {
		h.t.Fatalf("batch %d: answered %d items, want %d", seq, len(a.values), n)
	}
	return a
}

func (a *answer) wantKind(t *testing.T, i uint32, kind workerpb.ErrorKind, msg string) {
	t.Helper()
	e := a.errs[i]
	switch {
	case e == nil:
		t.Errorf("item %d: no error, want %v", i, kind)
	case e.Kind != kind:
		t.Errorf("item %d: kind %v (%q), want %v", i, e.Kind, e.Message, kind)
	case !strings.Contains(string(e.Message), msg):
		t.Errorf("item %d: message %q, want it to contain %q", i, e.Message, msg)
	}
}

// finish ends the stream as the host does (CloseSend) and returns Run's
// result.
func (h *harness) finish() error {
	h.t.Helper()
	close(h.stream.in)
	select {
	case err := <-h.done:
		h.done <- err // for the cleanup
		return err
	case <-time.After(10 * time.Second):
		h.t.Fatal("Run did not return after the stream ended")
		return nil
	}
}

func TestRunResultsOutputAndIDs(t *testing.T) {
	task := Func(func(ctx context.Context, n int) (int, error) {
		Printf(ctx, "task %d attempt %d: %d", TaskID(ctx), Attempt(ctx), n)
		if n == 0 {
			return 0, errors.New("zero")
		}
		return 2 * n, nil
	})
	h := startRun(t, task, &workerpb.InitRequest{})

	h.send(batch(1, 100, "1", "2", `"x"`, "0", "40"))
	a := h.collect(1, 5)
	if want := []string{"2", "4", "", "", "80"}; !slices.Equal(a.values, want) {
		t.Errorf("values = %q, want %q", a.values, want)
	}
	a.wantKind(t, 2, workerpb.ErrorKind_ERROR_KIND_DECODE, `cannot decode input "x" as int`)
	a.wantKind(t, 3, workerpb.ErrorKind_ERROR_KIND_TASK, "zero")
	if len(a.errs) != 2 {
		t.Errorf("errors = %v, want items 2 and 3 only", a.errs)
	}
	wantLines := map[uint32][]string{
		0: {"task 100 attempt 1: 1"}, 1: {"task 101 attempt 1: 2"},
		3: {"task 103 attempt 1: 0"}, 4: {"task 104 attempt 1: 40"},
	}
	for i, want := range wantLines {
		if !slices.Equal(a.lines[i], want) {
			t.Errorf("item %d lines = %q, want %q", i, a.lines[i], want)
		}
	}
	if len(a.lines) != len(wantLines) {
		t.Errorf("output for %d items, want %d", len(a.lines), len(wantLines))
	}

	// Explicit ids (retries of scattered tasks) and an attempt number.
	b := batch(2, 0, "5", "6")
	b.Ids = []uint64{7, 900}
	b.Attempt = 2
	h.send(b)
	a = h.collect(2, 2)
	if !slices.Equal(a.values, []string{"10", "12"}) {
		t.Errorf("values = %q", a.values)
	}
	if !slices.Equal(a.lines[0], []string{"task 7 attempt 2: 5"}) || !slices.Equal(a.lines[1], []string{"task 900 attempt 2: 6"}) {
		t.Errorf("lines = %v", a.lines)
	}

	// An empty batch is answered too.
	h.send(batch(3, 0))
	select {
	case r := <-h.stream.out:
		if r.Seq != 3 || len(r.Ends) != 0 || len(r.Data) != 0 {
			t.Errorf("answer to an empty batch: %v", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no answer to an empty batch")
	}

	if err := h.finish(); err != nil {
		t.Errorf("Run after CloseSend = %v, want nil", err)
	}
}

func TestRunErrorKinds(t *testing.T) {
	task := Raw(func(ctx context.Context, in []byte) ([]byte, error) {
		switch string(in) {
		case `"fail"`:
			return nil, errors.New("boom")
		case `"panic"`:
			panic("kaboom")
		case `"retry"`:
			return nil, Retry(errors.New("try later"))
		case `"print"`:
			Printf(ctx, "first\nsecond")
			Println(ctx, "third")
			return nil, nil // no value
		}
		return in, nil
	})
	h := startRun(t, task, &workerpb.InitRequest{})
	h.send(batch(1, 0, `"a"`, `"fail"`, `"panic"`, `"retry"`, `"print"`, `"b"`))
	a := h.collect(1, 6)
	if want := []string{`"a"`, "", "", "", "", `"b"`}; !slices.Equal(a.values, want) {
		t.Errorf("values = %q, want %q", a.values, want)
	}
	a.wantKind(t, 1, workerpb.ErrorKind_ERROR_KIND_TASK, "boom")
	a.wantKind(t, 2, workerpb.ErrorKind_ERROR_KIND_PANIC, "panic: kaboom")
	a.wantKind(t, 3, workerpb.ErrorKind_ERROR_KIND_RETRY, "try later")
	if e := a.errs[2]; e != nil && !strings.Contains(string(e.Message), "goroutine ") {
		t.Errorf("panic message has no stack: %q", e.Message)
	}
	if a.errs[4] != nil {
		t.Errorf("a task with no value failed: %v", a.errs[4])
	}
	if !slices.Equal(a.lines[4], []string{"first", "second", "third"}) {
		t.Errorf("lines = %q", a.lines[4])
	}
	if len(a.errs) != 3 || len(a.lines) != 1 {
		t.Errorf("errors %v, output %v: want 3 errors and one item's output", a.errs, a.lines)
	}
}

// waitTask blocks until its context ends, counting the items it started.
type waitTask struct {
	started chan int
	runs    atomic.Int32
	err     chan error // what ctx.Err() was when Done closed
}

func newWaitTask() *waitTask {
	return &waitTask{started: make(chan int, 100), err: make(chan error, 100)}
}

func (w *waitTask) task() Task {
	return Func(func(ctx context.Context, n int) (int, error) {
		w.runs.Add(1)
		if n == 0 {
			return 0, nil // quick
		}
		w.started <- n
		<-ctx.Done()
		w.err <- ctx.Err()
		return 0, fmt.Errorf("stopped: %w", ctx.Err())
	})
}

func TestRunTimeout(t *testing.T) {
	w := newWaitTask()
	h := startRun(t, w.task(), &workerpb.InitRequest{TaskTimeoutMs: 30})
	start := time.Now()
	h.send(batch(1, 0, "1", "0", "2"))
	a := h.collect(1, 3)
	if d := time.Since(start); d < 60*time.Millisecond {
		t.Errorf("two timed-out tasks took %v, want >= 60ms", d)
	}
	a.wantKind(t, 0, workerpb.ErrorKind_ERROR_KIND_TIMEOUT, "task timed out")
	a.wantKind(t, 2, workerpb.ErrorKind_ERROR_KIND_TIMEOUT, "task timed out")
	if a.errs[1] != nil || a.values[1] != "0" {
		t.Errorf("the quick item between them: %q, %v", a.values[1], a.errs[1])
	}
	for range 2 {
		if err := <-w.err; !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("ctx.Err() after the timeout = %v, want DeadlineExceeded", err)
		}
	}
}

// TestRunCancel cancels a running batch with no task timeout configured:
// the running task sees ctx.Done, the rest of the batch is answered
// CANCELED without running, and the next batch runs normally.
func TestRunCancel(t *testing.T) {
	for _, timeoutMs := range []uint64{0, 60_000} {
		t.Run(fmt.Sprint("timeout ", timeoutMs), func(t *testing.T) {
			w := newWaitTask()
			h := startRun(t, w.task(), &workerpb.InitRequest{TaskTimeoutMs: timeoutMs})
			h.send(batch(5, 0, "1", "2", "3"))
			<-w.started
			h.send(&workerpb.Batch{Seq: 5, Cancel: true})
			a := h.collect(5, 3)
			for i := range uint32(3) {
				a.wantKind(t, i, workerpb.ErrorKind_ERROR_KIND_CANCELED, "canceled")
			}
			if err := <-w.err; err != context.Canceled {
				t.Errorf("ctx.Err() = %v, want context.Canceled", err)
			}
			if n := w.runs.Load(); n != 1 {
				t.Errorf("%d items ran, want only the one running at the cancel", n)
			}
			h.send(batch(6, 0, "0", "0"))
			if a := h.collect(6, 2); len(a.errs) != 0 {
				t.Errorf("the batch after a cancel failed: %v", a.errs)
			}
		})
	}
}

// TestRunCancelQueued cancels a batch that has not started yet.
func TestRunCancelQueued(t *testing.T) {
	release := make(chan struct{})
	var runs atomic.Int32
	task := Func(func(ctx context.Context, n int) (int, error) {
		runs.Add(1)
		if n == 1 {
			<-release
		}
		return n, nil
	})
	h := startRun(t, task, &workerpb.InitRequest{})
	h.send(batch(1, 0, "1"))
	h.send(batch(2, 0, "2", "2"))
	h.send(&workerpb.Batch{Seq: 2, Cancel: true})
	h.send(batch(3, 0, "3")) // taken only after the cancel was handled
	close(release)
	if a := h.collect(1, 1); a.values[0] != "1" {
		t.Errorf("batch 1 = %q", a.values)
	}
	a := h.collect(2, 2)
	a.wantKind(t, 0, workerpb.ErrorKind_ERROR_KIND_CANCELED, "canceled")
	a.wantKind(t, 1, workerpb.ErrorKind_ERROR_KIND_CANCELED, "canceled")
	if a := h.collect(3, 1); a.values[0] != "3" {
		t.Errorf("batch 3 = %q", a.values)
	}
	if n := runs.Load(); n != 2 {
		t.Errorf("%d tasks ran, want 2 (none of the cancelled batch)", n)
	}
}

// TestRunStreamCancel ends the stream (host gone) while a task runs.
func TestRunStreamCancel(t *testing.T) {
	w := newWaitTask()
	h := startRun(t, w.task(), &workerpb.InitRequest{})
	h.send(batch(1, 0, "1", "2"))
	<-w.started
	h.cancel()
	select {
	case err := <-h.done:
		h.done <- err
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Run = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after the stream was cancelled")
	}
	if err := <-w.err; err != context.Canceled {
		t.Errorf("ctx.Err() = %v, want context.Canceled", err)
	}
	if n := w.runs.Load(); n != 1 {
		t.Errorf("%d items ran after the stream ended, want 1", n)
	}
}

// TestRunFlush checks partial answers of a long batch.
func TestRunFlush(t *testing.T) {
	task := Func(func(ctx context.Context, n int) (int, error) {
		time.Sleep(3 * time.Millisecond)
		Printf(ctx, "item %d", n)
		if n%3 == 0 {
			return 0, fmt.Errorf("%d: multiple of 3", n)
		}
		return n, nil
	})
	h := startRun(t, task, &workerpb.InitRequest{FlushIntervalMs: 1})
	var items []string
	for i := range 12 {
		items = append(items, fmt.Sprint(i+1))
	}
	h.send(batch(1, 0, items...))
	a := h.collect(1, 12) // checks the ranges
	if len(a.responses) < 2 {
		t.Errorf("12 items of 3 ms with a 1 ms flush interval came back in %d response", len(a.responses))
	}
	for i := range uint32(12) {
		n := i + 1
		if n%3 == 0 {
			a.wantKind(t, i, workerpb.ErrorKind_ERROR_KIND_TASK, "multiple of 3")
		} else if a.values[i] != fmt.Sprint(n) {
			t.Errorf("item %d = %q, want %d", i, a.values[i], n)
		}
		if want := []string{fmt.Sprint("item ", n)}; !slices.Equal(a.lines[i], want) {
			t.Errorf("item %d lines = %q, want %q", i, a.lines[i], want)
		}
	}
}

func TestRunMalformedBatch(t *testing.T) {
	h := startRun(t, Raw(func(_ context.Context, in []byte) ([]byte, error) { return in, nil }), &workerpb.InitRequest{})
	h.send(&workerpb.Batch{Seq: 1, Data: []byte("12"), Ends: []uint32{1, 5}})
	select {
	case err := <-h.done:
		h.done <- err
		if err == nil || !strings.Contains(err.Error(), "malformed batch 1") {
			t.Errorf("Run = %v, want a malformed batch error", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not fail on a malformed batch")
	}
}

// A host that skips Init (a bug, but maybe in another language) must not
// crash the plugin.
func TestRunWithoutInit(t *testing.T) {
	h := startRun(t, Func(func(_ context.Context, n int) (int, error) { return n, nil }), nil)
	h.send(batch(1, 0, "7"))
	if a := h.collect(1, 1); a.values[0] != "7" {
		t.Errorf("values = %q", a.values)
	}
}

func TestDescribeAndInit(t *testing.T) {
	var gotCfg string
	p := Plugin{Name: "p", Version: "1.2.3", Idempotent: true, Task: Raw(nil),
		Init: func(_ context.Context, cfg []byte) error {
			gotCfg = string(cfg)
			switch gotCfg {
			case `{"bad":1}`:
				return errors.New(`unknown key "bad"`)
			case `{"panic":1}`:
				panic("init exploded")
			}
			return nil
		}}
	s := &server{plugin: p, logger: hclog.NewNullLogger()}
	d, err := s.Describe(t.Context(), &workerpb.DescribeRequest{})
	if err != nil || d.Name != "p" || d.Version != "1.2.3" || !d.Idempotent || d.Sdk != "go/"+Version || d.StartLedger {
		t.Errorf("Describe = %v, %v", d, err)
	}
	if _, err := s.Init(t.Context(), &workerpb.InitRequest{TaskTimeoutMs: 5}); err != nil || gotCfg != "{}" {
		t.Errorf("Init without config: %v, config %q; want {}", err, gotCfg)
	}
	if s.timeout != 5*time.Millisecond || s.flush != defaultFlush {
		t.Errorf("timeout %v, flush %v", s.timeout, s.flush)
	}
	if _, err := s.Init(t.Context(), &workerpb.InitRequest{Config: []byte(`{"bad":1}`)}); err == nil || err.Error() != `init: unknown key "bad"` {
		t.Errorf("Init error = %v", err)
	}
	if _, err := s.Init(t.Context(), &workerpb.InitRequest{Config: []byte(`{"panic":1}`)}); err == nil || !strings.Contains(err.Error(), "init panicked: init exploded") {
		t.Errorf("Init panic = %v", err)
	}
}

// With max_result_bytes, an item whose result (with its printed lines) is
// larger fails alone as a task error, and no response holds more than the
// limit unless one item alone does: the host refuses larger messages. A
// huge error message is cut. The same with a task timeout, where tasks
// run guarded (runGuarded).
func TestMaxResultBytes(t *testing.T) {
	t.Run("no timeout", func(t *testing.T) { testMaxResultBytes(t, 0) })
	t.Run("timeout", func(t *testing.T) { testMaxResultBytes(t, 60_000) })
}

func testMaxResultBytes(t *testing.T, timeoutMs uint64) {
	const limit = 1000
	task := Raw(func(ctx context.Context, in []byte) ([]byte, error) {
		switch s := string(in); {
		case s == `"fail"`:
			return nil, errors.New(strings.Repeat("e", 100<<10))
		case strings.HasPrefix(s, `"print`):
			Println(ctx, strings.Repeat("p", 600))
			Println(ctx, strings.Repeat("p", 600))
			return []byte("1"), nil
		default:
			var n int
			fmt.Sscan(s, &n)
			return []byte(strings.Repeat("7", n)), nil
		}
	})
	h := startRun(t, task, &workerpb.InitRequest{MaxResultBytes: limit, FlushIntervalMs: 60_000, TaskTimeoutMs: timeoutMs})
	items := []string{"400", "400", "400", "1000", "1001", "10", `"print"`, `"fail"`, "300"}
	h.send(batch(1, 1, items...))
	a := h.collect(1, len(items))
	for i, want := range []int{400, 400, 400, 1000, -1, 10, -1, -1, 300} {
		if want < 0 {
			continue
		}
		if len(a.values[i]) != want {
			t.Errorf("item %d: %d bytes, want %d", i, len(a.values[i]), want)
		}
	}
	a.wantKind(t, 4, workerpb.ErrorKind_ERROR_KIND_TASK, "result is 1001 bytes, over the 1000-byte limit (max_result_bytes)")
	a.wantKind(t, 6, workerpb.ErrorKind_ERROR_KIND_TASK, "result and printed lines are 1201 bytes")
	a.wantKind(t, 7, workerpb.ErrorKind_ERROR_KIND_TASK, "more bytes cut")
	if len(a.lines[6]) != 0 {
		t.Errorf("the failed item's printed lines were sent: %d", len(a.lines[6]))
	}
	for _, r := range a.responses {
		size := len(r.Data)
		for _, e := range r.Errors {
			size += len(e.Message)
		}
		for _, o := range r.Output {
			for _, l := range o.Lines {
				size += len(l)
			}
		}
		if size > limit && len(r.Ends) > 1 {
			t.Errorf("a response of %d items holds %d bytes, over max_result_bytes %d", len(r.Ends), size, limit)
		}
		if len(r.Errors) == 1 && len(r.Errors[0].Message) > maxErrorBytes+100 {
			t.Errorf("an error message of %d bytes was sent", len(r.Errors[0].Message))
		}
	}
	if len(a.responses) < 5 {
		t.Errorf("%d responses for items that fit %d at most per response", len(a.responses), 2)
	}
}

// The start ledger: a task sees its own id marked running; after the batch
// the word says the last task finished. Describe says the plugin keeps it.
func TestRunLedger(t *testing.T) {
	word := new(uint64)
	seen := make(chan uint64, 10)
	task := Func(func(ctx context.Context, n int) (int, error) {
		seen <- *word // the runner's goroutine: no race
		return n, nil
	})
	s := &server{plugin: Plugin{Name: "test", Task: task}, logger: hclog.NewNullLogger(), ledger: word}
	if d, _ := s.Describe(t.Context(), &workerpb.DescribeRequest{}); !d.StartLedger {
		t.Error("Describe does not report the start ledger")
	}
	h := startServer(t, s, &workerpb.InitRequest{})
	b := batch(1, 0, "1", "2", "3")
	b.Ids = []uint64{40, 41, 7}
	h.send(b)
	h.collect(1, 3)
	for _, id := range []uint64{40, 41, 7} {
		if got := <-seen; got != id<<1|1 {
			t.Errorf("task %d saw the ledger at %#x; want %#x (running)", id, got, id<<1|1)
		}
	}
	if *word != 7<<1 { // read after the answer: Run wrote it before
		t.Errorf("ledger after the batch = %#x; want %#x (task 7 finished)", *word, 7<<1)
	}
}

// With a task timeout, the answers of the items that finished before a
// task that hangs are sent while it hangs, not after it: the host would
// otherwise lose them when it kills the process.
func TestRunSendsAnswersWhileATaskHangs(t *testing.T) {
	release := make(chan struct{})
	task := Func(func(ctx context.Context, n int) (int, error) {
		if n == 0 {
			<-release // ignores its context
		}
		return n, nil
	})
	h := startRun(t, task, &workerpb.InitRequest{TaskTimeoutMs: 60_000, FlushIntervalMs: 5})
	h.send(batch(1, 0, "1", "2", "0", "3"))
	var first *workerpb.Batch
	select {
	case first = <-h.stream.out:
	case <-time.After(10 * time.Second):
		t.Fatal("no answer while the third task hangs")
	}
	if first.First != 0 || len(first.Ends) != 2 || string(first.Data) != "12" {
		t.Errorf("answer while the task hangs: first %d, %d items, data %q; want items 0 and 1", first.First, len(first.Ends), first.Data)
	}
	close(release)
	var data []byte
	for next := uint32(2); next < 4; {
		select {
		case r := <-h.stream.out:
			if r.First != next {
				t.Fatalf("answer for items from %d; want from %d", r.First, next)
			}
			data = append(data, r.Data...)
			next += uint32(len(r.Ends))
		case <-time.After(10 * time.Second):
			t.Fatal("no answer after the task returned")
		}
	}
	if string(data) != "03" {
		t.Errorf("items 2 and 3 after the task returned: %q; want 0 and 3", data)
	}
}
