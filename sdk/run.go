package sdk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	workerpb "github.com/pluginpool/pluginpool/sdk/proto"
)

// Run serves the Run stream over gRPC.
func (s *server) Run(stream workerpb.Worker_RunServer) error {
	return s.run(stream.Context(), stream, true)
}

// batchStream is the Run stream: gRPC's, or the lane's (lane.go).
type batchStream interface {
	Send(*workerpb.Batch) error
	Recv() (*workerpb.Batch, error)
}

// recycler is a batchStream that reuses the batches Recv returned: run
// hands each back once it is done with it.
type recycler interface {
	recycle(*workerpb.Batch)
}

// run serves one stream of batches, which ends with ctx: a receiver
// goroutine queues request batches while this goroutine runs them and
// sends answers. Receiving and sending must not share a goroutine: with
// large batches both sides end up blocked in SendMsg on gRPC flow control
// (measured with a prototype), or in write on a full socket buffer. yield:
// Send only queues a message for another goroutine to write (gRPC), see
// runner.send.
func (s *server) run(ctx context.Context, stream batchStream, yield bool) error {
	// The host bounds the batches in flight; this queue never holds more.
	reqs := make(chan *workerpb.Batch, 16)
	recvErr := make(chan error, 1)
	r := &runner{s: s, ctx: ctx, stream: stream, yield: yield, stop: make(chan struct{}), ledger: s.ledger}
	recycle := func(*workerpb.Batch) {}
	if rc, ok := stream.(recycler); ok {
		recycle = rc.recycle
	}
	go func() {
		defer close(reqs)
		for {
			b, err := stream.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			if b.Cancel {
				r.cancelBatch(b.Seq)
				recycle(b)
				continue
			}
			select {
			case reqs <- b:
			case <-ctx.Done():
				recvErr <- ctx.Err()
				return
			}
		}
	}()

	r.wg.Add(1)
	go r.watch()
	defer func() {
		close(r.stop)
		r.wg.Wait()
	}()

	for b := range reqs {
		err := r.runBatch(b)
		recycle(b) // answered: nothing uses it any more
		if err != nil {
			return err
		}
	}
	if err := <-recvErr; err != io.EOF {
		return err
	}
	return nil
}

// runner runs the batches of one stream, one item at a time.
type runner struct {
	s      *server
	ctx    context.Context
	stream batchStream
	yield  bool // see send

	cur      atomic.Pointer[taskCtx] // the context of the task running now, or of the last one
	dead     atomic.Bool             // the stream's context is done
	curSeq   atomic.Uint64           // the batch running now
	flushDue atomic.Bool             // set by watch: time to report progress

	// Batches the host cancelled. cancels counts cancel requests so that
	// runBatch looks at the map only when it changed.
	cancelMu  sync.Mutex
	cancelled map[uint64]bool
	cancels   atomic.Uint64

	stop chan struct{}
	wg   sync.WaitGroup

	resp   workerpb.Batch // reused: Send serializes before it returns
	out    []byte
	size   int     // bytes of resp so far: data, error messages, printed lines
	ledger *uint64 // s.ledger, one load nearer

	// With a task timeout, guard says who owns resp and out while a task
	// runs (see steal); index is the running item's, for steal.
	guard     atomic.Int32
	index     int
	lastSteal int64 // watch's: the start time of the task it last stole under
}

// guard states.
const (
	guardRunner   = iota // the runner owns resp: no task is running
	guardTask            // a task is running: watch may take resp
	guardWatch           // watch is sending resp's answers
	guardReturned        // watch is done: resp holds no answer any more
)

// watch raises flushDue every flush interval, cancels the running task when
// it passes the task timeout, and cancels it when the stream ends.
func (r *runner) watch() {
	defer r.wg.Done()
	tick := r.s.flush
	if tick <= 0 {
		tick = defaultFlush // Run without Init: NewTicker panics on 0
	}
	if t := r.s.timeout / 10; r.s.timeout > 0 && t < tick {
		tick = max(t, time.Millisecond)
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	done := r.ctx.Done()
	for {
		select {
		case <-r.stop:
			return
		case <-done:
			done = nil // keep cancelling whatever starts next, on each tick
			r.dead.Store(true)
		case now := <-t.C:
			r.flushDue.Store(true)
			c := r.cur.Load()
			if c == nil || r.s.timeout <= 0 {
				break
			}
			started := c.started.Load()
			ran := now.UnixNano() - started
			if ran >= int64(r.s.timeout) {
				c.cancel(errTimeout)
			}
			if ran >= int64(tick) && started != r.lastSteal {
				r.lastSteal = started
				r.steal()
			}
		}
		if c := r.cur.Load(); c != nil && r.ctx.Err() != nil {
			c.cancel(context.Canceled)
		}
	}
}

// cancelBatch handles the host's cancel request for batch seq.
func (r *runner) cancelBatch(seq uint64) {
	r.cancelMu.Lock()
	if r.cancelled == nil {
		r.cancelled = make(map[uint64]bool)
	}
	r.cancelled[seq] = true
	r.cancelMu.Unlock()
	r.cancels.Add(1)
	if r.curSeq.Load() == seq {
		if c := r.cur.Load(); c != nil {
			c.cancel(context.Canceled)
		}
	}
}

// isCancelled reports whether the host cancelled batch seq, forgetting
// cancels of batches before it (seqs only grow).
func (r *runner) isCancelled(seq uint64) bool {
	r.cancelMu.Lock()
	defer r.cancelMu.Unlock()
	for s := range r.cancelled {
		if s < seq {
			delete(r.cancelled, s)
		}
	}
	return r.cancelled[seq]
}

// batchRun is runBatch's progress through one request batch, kept outside
// the item loop so that a task's panic can leave the loop and the batch go
// on from the next item (see runItems).
type batchRun struct {
	b           *workerpb.Batch
	i           int    // the item running, or next
	prev        uint32 // where item i starts in b.Data
	attempt     int
	tc          *taskCtx
	seenCancels uint64
	cancelled   bool
	mark        int  // len(r.out) before item i
	inTask      bool // a task runs on the plain path: a panic is its
	panicked    error
}

func (r *runner) runBatch(b *workerpb.Batch) error {
	if err := checkRequest(b); err != nil {
		return err
	}
	r.curSeq.Store(b.Seq)
	resp := &r.resp
	*resp = workerpb.Batch{Seq: b.Seq, Ends: resp.Ends[:0]}
	r.out, r.size = r.out[:0], 0
	r.flushDue.Store(false)
	st := &batchRun{b: b, attempt: int(max(b.Attempt, 1))}
	for {
		done, err := r.runItems(st)
		if err != nil {
			return err
		}
		if done {
			return r.send()
		}
		// A task panicked: its item fails with the panic, and the batch
		// goes on.
		err, st.panicked = st.panicked, nil
		if err := r.finish(st, err); err != nil {
			return err
		}
		st.i++
	}
}

// runItems runs the batch's items from st.i on. It returns true once the
// last is done, an error if sending an answer failed, or false after a
// task panicked, with st.panicked set and st.i at its item: the panic
// stops here, not in the plugin. One recover around the loop rather than
// one per task (a deferred closure and a recover call) saves ~90
// instructions of a trivial task's ~600 in the plugin. Only a task's panic
// is recovered: one in the SDK's own code between tasks is a bug, and
// crashes the plugin.
func (r *runner) runItems(st *batchRun) (done bool, err error) {
	defer func() {
		if st.inTask {
			st.inTask = false
			st.panicked = &panicError{value: recover(), stack: debug.Stack()}
			markDone(r.ledger, st.tc.id)
		}
	}()
	b, task := st.b, r.s.plugin.Task
	for n := len(b.Ends); st.i < n; st.i++ {
		i := st.i
		end := b.Ends[i]
		in := b.Data[st.prev:end]
		st.prev = end
		id := b.BaseId + uint64(i)
		if i < len(b.Ids) {
			id = b.Ids[i]
		}
		tc := st.tc
		if tc == nil || !tc.reusable() {
			tc = &taskCtx{parent: r.ctx, logger: r.s.logger, timeout: r.s.timeout}
			st.tc = tc
			r.cur.Store(tc)
		}
		tc.id, tc.attempt = id, st.attempt
		if tc.timeout > 0 {
			tc.started.Store(time.Now().UnixNano())
		}
		if n := r.cancels.Load(); n != st.seenCancels {
			st.seenCancels, st.cancelled = n, r.isCancelled(b.Seq)
			if st.cancelled {
				tc.cancel(context.Canceled)
			}
		}
		st.mark = len(r.out)
		var err error
		switch {
		case st.cancelled:
			err = context.Canceled
		case r.dead.Load():
			err = r.ctx.Err()
		case tc.timeout > 0:
			// The item's bytes start at mark, which moves if watch stole
			// the answers before it.
			r.out, st.mark, err = r.runGuarded(tc, i, in)
		default:
			// The start ledger's two marks (ledger.go) around the task.
			markStart(r.ledger, id)
			st.inTask = true
			r.out, err = task.run(tc, in, r.out)
			st.inTask = false
			markDone(r.ledger, id)
		}
		// The common case: a value, no lines, within max_result_bytes on
		// its own and with the answers before it, no flush due.
		if size, max := len(r.out)-st.mark, r.s.maxResult; err == nil && len(tc.lines) == 0 && !r.flushDue.Load() &&
			(max <= 0 || r.size+size <= max) {
			r.size += size
			r.resp.Ends = append(r.resp.Ends, uint32(len(r.out)))
			continue
		}
		if err := r.finish(st, err); err != nil {
			return false, err
		}
	}
	return true, nil
}

// finish records item st.i's answer: its error (err, or nil, or the
// error of a result over max_result_bytes), where its value ends, its
// printed lines; it sends the answers before it first if together they
// would be over max_result_bytes, and the answers so far when the flush
// interval has passed.
func (r *runner) finish(st *batchRun, err error) error {
	resp, tc, i, mark := &r.resp, st.tc, st.i, st.mark
	idx := uint32(i)
	if max := r.s.maxResult; err == nil && max > 0 {
		if size := len(r.out) - mark + linesSize(tc.lines); size > max {
			err = &tooLargeError{size: size, limit: max, lines: len(tc.lines) > 0}
			tc.lines = nil
		}
	}
	var msg []byte
	if err != nil {
		r.out = r.out[:mark]
		msg = errorMessage(err)
	}
	// No response over maxResult: answer the items before this one first
	// if together they would be.
	size := len(r.out) - mark + len(msg) + linesSize(tc.lines)
	if r.s.maxResult > 0 && r.size > 0 && r.size+size > r.s.maxResult {
		full := r.out
		r.out = full[:mark]
		if err := r.send(); err != nil {
			return err
		}
		*resp = workerpb.Batch{Seq: st.b.Seq, First: idx, Ends: resp.Ends[:0]}
		r.out, r.size = full[:copy(full, full[mark:])], 0
	}
	r.size += size
	if err != nil {
		resp.Errors = append(resp.Errors, &workerpb.ItemError{Index: idx, Kind: errorKind(tc, err), Message: msg})
	}
	resp.Ends = append(resp.Ends, uint32(len(r.out)))
	if len(tc.lines) > 0 {
		resp.Output = append(resp.Output, &workerpb.ItemOutput{Index: idx, Lines: tc.lines})
		tc.lines = nil
	}
	if i+1 < len(st.b.Ends) && r.flushDue.Load() {
		if err := r.send(); err != nil {
			return err
		}
		*resp = workerpb.Batch{Seq: st.b.Seq, First: uint32(i + 1), Ends: resp.Ends[:0]}
		r.out, r.size = r.out[:0], 0
		r.flushDue.Store(false)
	}
	return nil
}

// tooLargeError fails an item whose answer is over max_result_bytes.
type tooLargeError struct {
	size, limit int
	lines       bool // printed lines count in size
}

func (e *tooLargeError) Error() string {
	what := "result is"
	if e.lines {
		what = "result and printed lines are"
	}
	return fmt.Sprintf("%s %d bytes, over the %d-byte limit (max_result_bytes): return less, or raise max_result_bytes", what, e.size, e.limit)
}

// maxErrorBytes bounds one task's error message on the wire.
const maxErrorBytes = 64 << 10

// errorMessage is err's message, cut to maxErrorBytes.
func errorMessage(err error) []byte {
	msg := err.Error()
	if len(msg) > maxErrorBytes {
		msg = fmt.Sprintf("%s... (%d more bytes cut)", msg[:maxErrorBytes], len(msg)-maxErrorBytes)
	}
	return []byte(msg)
}

func linesSize(lines [][]byte) int {
	n := 0
	for _, l := range lines {
		n += len(l)
	}
	return n
}

func (r *runner) send() error {
	r.resp.Data = r.out
	err := r.stream.Send(&r.resp)
	if !r.yield {
		return err // the lane wrote it
	}
	// gRPC's Send only queues the answer for its writer goroutine. With
	// GOMAXPROCS=1 that goroutine, and the reader bringing the next batch,
	// would wait until this one blocks, holding the answer back for a whole
	// batch: let them run now. Twice: the writer itself yields once before
	// flushing a write under 1000 bytes, hoping to batch it (measured: with
	// one Gosched, 24 of 60 slow-task answers still waited for the next).
	runtime.Gosched()
	runtime.Gosched()
	return err
}

// runGuarded runs item i of the batch, whose context is tc, when there is
// a task timeout: like the plain path in runBatch (the start ledger's
// marks around the task; nothing appended if it failed), but meanwhile
// watch may send the answers of the items before i (see steal); then they
// are dropped from the front of the buffer. It returns where the item's
// bytes start in out. The handover costs two atomic
// operations per task, which is why plugins without a task timeout
// (trivial tasks, W1 and W2 of make bench) do without it.
func (r *runner) runGuarded(tc *taskCtx, i int, in []byte) (out []byte, mark int, err error) {
	mark = len(r.out)
	markStart(r.ledger, tc.id)
	r.index = i
	r.guard.Store(guardTask)
	out, err = r.call(tc, in, r.out)
	markDone(r.ledger, tc.id)
	if !r.guard.CompareAndSwap(guardTask, guardRunner) {
		for r.guard.Load() != guardReturned {
			runtime.Gosched() // watch is in the middle of one Send
		}
		r.guard.Store(guardRunner)
		out = out[:copy(out, out[mark:])]
		mark, r.size = 0, 0 // resp was sent and emptied
	}
	if err != nil {
		out = out[:mark]
	}
	return out, mark, err
}

// steal sends the answers of the items that finished before the running
// task, if there are any, and empties resp. watch calls it once the task
// has run for a tick: the runner answers only between tasks, so a task
// that hangs until the host kills the process would take those answers
// down with it, and the host would have to run those items again (or fail
// them, for a plugin that is not idempotent). With the answers in, a
// timeout kill costs only the hung task (issue 8, case 4).
func (r *runner) steal() {
	if !r.guard.CompareAndSwap(guardTask, guardWatch) {
		return // between tasks, or no task timeout
	}
	if resp := &r.resp; len(resp.Ends) > 0 {
		resp.Data = r.out
		// An error ends the stream: the runner's next send reports it.
		_ = r.stream.Send(resp)
		*resp = workerpb.Batch{Seq: resp.Seq, First: uint32(r.index), Ends: resp.Ends[:0]}
	}
	r.guard.Store(guardReturned)
}

// call runs one task, turning a panic into that task's error.
func (r *runner) call(tc *taskCtx, in, out []byte) (res []byte, err error) {
	defer func() {
		if p := recover(); p != nil {
			res, err = out, &panicError{value: p, stack: debug.Stack()}
		}
	}()
	return r.s.plugin.Task.run(tc, in, out)
}

type panicError struct {
	value any
	stack []byte
}

func (e *panicError) Error() string {
	return fmt.Sprintf("panic: %v\n\n%s", e.value, e.stack)
}

func errorKind(tc *taskCtx, err error) workerpb.ErrorKind {
	var (
		pe *panicError
		de *DecodeError
		re *retryError
	)
	switch {
	case errors.As(err, &pe):
		return workerpb.ErrorKind_ERROR_KIND_PANIC
	case errors.As(err, &de):
		return workerpb.ErrorKind_ERROR_KIND_DECODE
	case errors.As(err, &re):
		return workerpb.ErrorKind_ERROR_KIND_RETRY
	}
	cerr := tc.cancelled()
	if cerr == errTimeout {
		return workerpb.ErrorKind_ERROR_KIND_TIMEOUT
	}
	if isCanceled(err) || isCanceled(cerr) {
		return workerpb.ErrorKind_ERROR_KIND_CANCELED
	}
	return workerpb.ErrorKind_ERROR_KIND_TASK
}
