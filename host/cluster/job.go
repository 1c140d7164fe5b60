package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/pluginpool/pluginpool/host/backend"
	"github.com/pluginpool/pluginpool/host/cluster/clusterpb"
)

// A job is one call's worth of items on the cluster: a Map, an Imap
// iteration, an Apply. Its goroutines: the feeder (reads the caller's
// items into batches), the publisher (publishes sealed batches), the
// flusher (seals a partly filled batch when the input stalls) and the
// heartbeat (refreshes the job record); answers arrive on the NATS
// subscription's goroutine; results leave on the caller's.
type job struct {
	e       *Executor
	ctx     context.Context
	ordered bool
	id      string
	rec     jobRecord
	window  int
	sub     *nats.Subscription
	loops   sync.WaitGroup
	// life is cancelled when the job's goroutines must end (finish); it
	// carries ctx's values, not its cancellation.
	life    context.Context
	end     context.CancelFunc
	unwatch func() bool // stops the watch on ctx
	rev     uint64      // the job record's revision

	mu         sync.Mutex
	room       *sync.Cond         // Broadcast when the window frees up or the job stops
	batches    map[uint64]*hbatch // cut, not yet complete
	complete   map[uint64]*hbatch // ordered: complete, not yet yielded
	queue      []*hbatch          // unordered: complete, not yet yielded
	ready      []*sealed          // sealed, waiting for the publisher
	open       *openBatch         // the batch the feeder fills
	inWindow   int                // batches opened or cut, not yet yielded
	cut        uint64             // batches cut: the next batch's seq
	yielded    uint64             // batches handed to the caller
	unanswered int                // batches sealed, not yet complete
	fed        bool               // the input is exhausted (or the job stopped)
	stopped    bool
	err        error // why the job stopped; unresolved items resolve to it
	itemBytes  int   // average item size seen, to size buffers
	free       [][]byte
	freeEnds   [][]uint32
	wake       chan struct{} // cap 1: the caller has something to look at
	kick       chan struct{} // cap 1: the publisher has something to publish
}

// hbatch is the host's view of one batch: which of its items have a
// result, and where each result is.
type hbatch struct {
	seq     uint64
	first   int // job-wide index of its first item
	n       int
	segs    []seg // resolved ranges, sorted and disjoint
	covered int
	local   bool // never sent: failed at once
}

// seg says that items lo..hi-1 of a batch resolve to answer a's items
// from off on, or, with a nil a, to err.
type seg struct {
	lo, hi int
	a      *answer
	off    int
	err    error
}

// openBatch is the batch the feeder is filling. fill counts the items
// published into it; the flusher may claim it at any time, which sets
// the claimed bit and makes the feeder's next publish fail (the feeder
// then moves that item to a fresh batch). One compare-and-swap per item,
// no lock: the local pool's feeder measured a lock per item at ~18% of
// the CLI's CPU.
type openBatch struct {
	fill   atomic.Uint64
	data   []byte
	ends   []uint32
	first  int
	opened time.Time
}

const claimed = 1 << 63

// claim takes the open batch's published items, if any, and returns how
// many.
func (b *openBatch) claim() int {
	for {
		s := b.fill.Load()
		if s&claimed != 0 || s == 0 {
			return 0
		}
		if b.fill.CompareAndSwap(s, s|claimed) {
			return int(s)
		}
	}
}

// sealed is a batch ready to publish.
type sealed struct {
	b    *hbatch
	data []byte
	ends []uint32
}

// run starts a job over items and returns its results as an iterator.
func (e *Executor) run(ctx context.Context, items iter.Seq[[]byte], ordered bool) iter.Seq2[int, backend.Result] {
	return func(yield func(int, backend.Result) bool) {
		e.runs(ctx, items, ordered, func(i0 int, rs []backend.Result) bool {
			for k := range rs {
				if !yield(i0+k, rs[k]) {
					return false
				}
			}
			return true
		})
	}
}

// runLen is the longest run of results runs hands over at a time.
const runLen = 256

// runs starts a job over items and hands its results to yield in runs:
// the job-wide index of a run's first item and the run, consecutive items
// of one batch, in a slice reused for the next run.
func (e *Executor) runs(ctx context.Context, items iter.Seq[[]byte], ordered bool, yield func(int, []backend.Result) bool) {
	j, err := e.newJob(ctx, ordered)
	if err != nil {
		i, one := 0, make([]backend.Result, 1)
		for range items {
			one[0] = backend.Result{Err: err}
			if !yield(i, one) {
				return
			}
			i++
		}
		return
	}
	j.loops.Add(1)
	fed := make(chan struct{})
	go func() {
		defer close(fed)
		defer j.loops.Done()
		j.feed(items)
	}()
	defer func() {
		j.stop(errAbandoned)
		<-fed
		j.finish()
	}()
	var run []backend.Result
	for {
		b := j.next()
		if b == nil {
			return
		}
		if run == nil {
			run = make([]backend.Result, 0, runLen)
		}
		at := b.first // index of run[0]
		for _, s := range b.segs {
			for k := s.lo; k < s.hi; k++ {
				r := backend.Result{Err: s.err}
				if s.a != nil {
					r = s.a.result(s.off + k - s.lo)
				}
				if run = append(run, r); len(run) == runLen {
					if !yield(at, run) {
						return
					}
					at, run = at+len(run), run[:0]
				}
			}
		}
		if len(run) > 0 {
			if !yield(at, run) {
				return
			}
			run = run[:0]
		}
		j.mu.Lock()
		j.yielded++
		j.inWindow--
		j.room.Broadcast()
		j.mu.Unlock()
	}
}

// newJob registers a job on the cluster: its record, its answer
// subscription and its consumer, and starts its goroutines but the feeder.
func (e *Executor) newJob(ctx context.Context, ordered bool) (*job, error) {
	j := &job{
		e: e, ctx: ctx, ordered: ordered, id: nuid.Next(),
		batches: make(map[uint64]*hbatch), complete: make(map[uint64]*hbatch),
		wake: make(chan struct{}, 1), kick: make(chan struct{}, 1),
	}
	j.life, j.end = context.WithCancel(context.WithoutCancel(ctx))
	j.room = sync.NewCond(&j.mu)
	if err := e.addJob(j); err != nil {
		return nil, err
	}
	j.window = e.window()
	j.rec = jobRecord{
		ID: j.id, Plugin: e.cfg.Plugin, SHA256: e.cfg.SHA256, Version: e.cfg.Version,
		Host: e.host, Pid: pid, AckWait: e.cfg.AckWait, HostTimeout: e.cfg.HostTimeout,
		MaxAttempts: e.cfg.MaxAttempts,
	}
	if err := j.register(ctx); err != nil {
		j.end()
		j.unregister()
		e.removeJob(j)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: starting a job: %v", ErrConnect, err)
	}
	j.loops.Add(3)
	go func() { defer j.loops.Done(); j.publish() }()
	go func() { defer j.loops.Done(); j.flush() }()
	go func() { defer j.loops.Done(); j.heartbeat() }()
	j.unwatch = context.AfterFunc(ctx, func() { j.stop(ctx.Err()) })
	return j, nil
}

// register subscribes to the job's answers, creates its consumer, then
// its record: workers find the job only once it can be served.
func (j *job) register(ctx context.Context) error {
	l := j.e.l
	var err error
	j.sub, err = l.nc.Subscribe(answerSubject(j.id), j.onAnswer)
	if err != nil {
		return err
	}
	// The window bounds what can pile up here; never drop an answer as a
	// slow consumer.
	_ = j.sub.SetPendingLimits(-1, -1)
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := l.nc.FlushWithContext(rctx); err != nil {
		return err
	}
	_, err = l.stream.CreateConsumer(rctx, jetstream.ConsumerConfig{
		Durable:       consumerName(j.id),
		Description:   fmt.Sprintf("pluginpool job for %s from %s", j.rec.Plugin, j.rec.Host),
		FilterSubject: batchSubject(j.id),
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       j.rec.AckWait,
		MaxDeliver:    -1, // workers count deliveries (see runBatch)
		MaxAckPending: j.window,
		MaxWaiting:    4096,
	})
	if err != nil {
		return fmt.Errorf("creating its consumer: %w", err)
	}
	data, _ := json.Marshal(&j.rec)
	rev, err := l.jobs.Create(rctx, j.id, data)
	if err != nil {
		return fmt.Errorf("creating its record: %w", err)
	}
	j.mu.Lock()
	j.rev = rev
	j.mu.Unlock()
	return nil
}

// unregister removes the job from the cluster (see reap). Errors are
// logged: the janitors reap what is left.
func (j *job) unregister() {
	if j.sub != nil {
		_ = j.sub.Unsubscribe()
	}
	l := j.e.l
	ctx, cancel := context.WithTimeout(context.WithoutCancel(j.ctx), 10*time.Second)
	defer cancel()
	if err := reap(ctx, l, j.id, 0); err != nil {
		j.e.log.Warn("cleaning up a finished job; the janitors will finish it", "job", j.id, "error", err)
	}
}

// finish ends the job's goroutines and removes it from the cluster. The
// feeder has returned.
func (j *job) finish() {
	j.unwatch()
	j.end()
	j.mu.Lock()
	j.room.Broadcast()
	j.mu.Unlock()
	j.loops.Wait()
	j.unregister()
	j.e.removeJob(j)
}

// next waits for the job's next complete batch (in seq order for ordered
// jobs), or returns nil when the job has no more.
func (j *job) next() *hbatch {
	for {
		j.mu.Lock()
		var b *hbatch
		if j.ordered {
			if b = j.complete[j.yielded]; b != nil {
				delete(j.complete, j.yielded)
			}
		} else if len(j.queue) > 0 {
			b = j.queue[0]
			j.queue[0] = nil
			j.queue = j.queue[1:]
		}
		done := b == nil && j.fed && j.open == nil && j.yielded == j.cut
		j.mu.Unlock()
		if b != nil {
			return b
		}
		if done {
			return nil
		}
		<-j.wake
	}
}

func (j *job) signal() {
	select {
	case j.wake <- struct{}{}:
	default:
	}
}

// stop ends the job with err: nothing more is cut or published, and every
// unresolved item resolves to err. Workers learn of it when the job is
// unregistered. Safe to call more than once; the first error wins.
func (j *job) stop(err error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.stopped {
		return
	}
	j.stopped, j.err = true, err
	j.closeOpen()
	j.fed = true
	j.ready = nil
	for _, b := range j.batches {
		n := b.n - b.covered
		j.cover(b, seg{lo: 0, hi: b.n, err: err})
		if n > 0 && err != errAbandoned {
			j.e.stats.failedLocally(n, err)
		}
	}
	j.room.Broadcast()
	j.signal()
}

// cover resolves the unresolved items of b within s's range to s, and
// completes b when none is left. It returns how many it resolved. Called
// with j.mu held.
func (j *job) cover(b *hbatch, s seg) int {
	added := 0
	var out []seg
	at := s.lo
	for _, x := range b.segs {
		if x.hi <= at || x.lo >= s.hi {
			out = append(out, x)
			continue
		}
		if x.lo > at {
			out = append(out, clip(s, at, x.lo))
			added += x.lo - at
		}
		out = append(out, x)
		at = max(at, x.hi)
	}
	if at < s.hi {
		out = append(out, clip(s, at, s.hi))
		added += s.hi - at
	}
	if added == 0 {
		return 0
	}
	sortSegs(out)
	b.segs = out
	b.covered += added
	if b.covered == b.n {
		delete(j.batches, b.seq)
		if !b.local {
			j.unanswered--
		}
		if j.ordered {
			j.complete[b.seq] = b
		} else {
			j.queue = append(j.queue, b)
		}
		j.signal()
	}
	return added
}

// clip narrows s to lo..hi-1.
func clip(s seg, lo, hi int) seg {
	s.off += lo - s.lo
	s.lo, s.hi = lo, hi
	return s
}

func sortSegs(s []seg) {
	for i := 1; i < len(s); i++ {
		for k := i; k > 0 && s[k].lo < s[k-1].lo; k-- {
			s[k], s[k-1] = s[k-1], s[k]
		}
	}
}

// onAnswer keeps an answer's results and confirms it to the worker, which
// acks its batch only then. Answers for items already resolved (a
// redelivered batch's late first owner, a retried request) are dropped.
func (j *job) onAnswer(m *nats.Msg) {
	a, err := decodeAnswer(m.Data)
	if err != nil {
		// No reply: the worker retries, then the batch is redelivered.
		j.e.log.Error("dropping an answer", "job", j.id, "error", err)
		return
	}
	j.mu.Lock()
	stopped := j.stopped
	b := j.batches[a.Seq]
	added, failed, timeouts := 0, 0, 0
	if b != nil && int(a.First)+a.len() <= b.n {
		lo := int(a.First)
		// Count what this answer resolves before cover may complete b.
		for k := range a.len() {
			if !b.has(lo + k) {
				if f := a.failed[uint32(k)]; f != nil {
					failed++
					if f.Kind == clusterpb.Kind_KIND_TIMEOUT {
						timeouts++
					}
				}
			}
		}
		added = j.cover(b, seg{lo: lo, hi: lo + a.len(), a: a})
	} else if b != nil {
		j.e.log.Error("dropping an answer past its batch's end", "job", j.id, "batch", a.Seq, "worker", a.Worker)
	}
	j.mu.Unlock()
	busy, whole := time.Duration(0), 0
	if a.Last && b != nil {
		busy, whole = time.Duration(a.BusyNs), b.n
	}
	if added > 0 || whole > 0 {
		j.e.stats.answered(a.Worker, added, failed, timeouts, a.Delivery > 1, busy, whole)
	}
	if a.Last && a.Delivery == 1 && b != nil && j.e.cfg.ChunkSize == 0 {
		j.e.observe(b.n, time.Duration(a.BusyNs), time.Duration(a.ItemNs))
	}
	if stopped {
		_ = m.Respond([]byte(replyGone))
		return
	}
	_ = m.Respond(nil)
}

// replyGone, as an answer's reply, tells the worker the job has ended.
const replyGone = "gone"

// has reports whether item k of b has a result. Called with j.mu held.
func (b *hbatch) has(k int) bool {
	for _, s := range b.segs {
		if k >= s.lo && k < s.hi {
			return true
		}
	}
	return false
}

// heartbeat refreshes the job record every HostTimeout/5, checking its
// revision: a record deleted or changed by a janitor means the cluster
// dropped the job, which then fails its unfinished items.
func (j *job) heartbeat() {
	every := j.rec.HostTimeout / 5
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-j.life.Done():
			return
		case <-t.C:
		}
		j.mu.Lock()
		j.rec.Beat++
		rec, rev := j.rec, j.rev
		j.mu.Unlock()
		data, _ := json.Marshal(&rec)
		ctx, cancel := context.WithTimeout(j.life, every)
		rev, err := j.e.l.jobs.Update(ctx, j.id, data, rev)
		cancel()
		switch {
		case j.life.Err() != nil:
			return
		case err == nil:
			j.mu.Lock()
			j.rev = rev
			j.mu.Unlock()
		case errors.Is(err, jetstream.ErrKeyRevisionMismatch), errors.Is(err, jetstream.ErrKeyExists), errors.Is(err, jetstream.ErrKeyNotFound):
			if rev, ok := j.stillOurs(); ok {
				// An earlier refresh timed out here but was stored.
				j.mu.Lock()
				j.rev = rev
				j.mu.Unlock()
				continue
			}
			j.e.log.Error("the cluster dropped this job: its heartbeat was late", "job", j.id, "host_timeout", rec.HostTimeout)
			j.stop(&LostError{Plugin: rec.Plugin, Reason: fmt.Sprintf(
				"the cluster dropped this job: workers heard no heartbeat from this host within host_timeout (%s) and purged its batches (was the host stopped or cut off?)", rec.HostTimeout)})
			return
		default:
			j.e.log.Warn("refreshing the job record", "job", j.id, "error", err)
		}
	}
}

// stillOurs reports whether the job record is still there (only janitors
// and its host write it; janitors only delete it), and its revision.
func (j *job) stillOurs() (uint64, bool) {
	ctx, cancel := context.WithTimeout(j.life, 5*time.Second)
	defer cancel()
	ent, err := j.e.l.jobs.Get(ctx, j.id)
	if err != nil {
		return 0, false
	}
	var rec jobRecord
	if json.Unmarshal(ent.Value(), &rec) != nil || rec.ID != j.id {
		return 0, false
	}
	return ent.Revision(), true
}

// feed cuts the caller's items into batches until the input ends or the
// job stops.
func (j *job) feed(items iter.Seq[[]byte]) {
	f := &filling{next: 0}
	for it := range items {
		if !j.add(f, it) {
			return
		}
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	j.closeOpen()
	j.fed = true
	j.signal()
	j.room.Broadcast()
}

// filling is the feeder's own view of the open batch.
type filling struct {
	b    *openBatch
	used int // bytes written
	n    int // items written
	next int // job-wide index of the next item
}

// add appends one item to the open batch, or cuts it as a batch of its own
// that fails at once when it is too large to send. It reports false when
// the job stopped and wants no more input.
func (j *job) add(f *filling, it []byte) bool {
	if err := j.tooLarge(len(it)); err != nil {
		return j.cutFailed(f, err)
	}
	for {
		if f.b == nil || f.used+len(it) > len(f.b.data) || f.n == len(f.b.ends) {
			if !j.rotate(f, len(it)) {
				return false
			}
		}
		copy(f.b.data[f.used:], it)
		f.b.ends[f.n] = uint32(f.used + len(it))
		if f.b.fill.CompareAndSwap(uint64(f.n), uint64(f.n+1)) {
			f.used += len(it)
			f.n++
			f.next++
			return true
		}
		f.b = nil // claimed meanwhile: the item goes into a fresh batch
	}
}

// tooLarge says why an item of n bytes cannot be sent, or nil.
func (j *job) tooLarge(n int) error {
	if n > j.e.cfg.MaxItemBytes {
		return &backend.TooLargeError{Size: n, Limit: j.e.cfg.MaxItemBytes}
	}
	if room := j.e.l.maxPayload - messageOverhead - perItemOverhead; n > room {
		return &PayloadError{Size: n, Limit: j.e.l.maxPayload}
	}
	return nil
}

// cutFailed seals the open batch and cuts a batch of one item that fails
// with err, in its place in the input order.
func (j *job) cutFailed(f *filling, err error) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	if !j.reserve(f) {
		return false
	}
	b := &hbatch{seq: j.cut, first: f.next, n: 1, local: true}
	j.cut++
	j.batches[b.seq] = b
	j.cover(b, seg{lo: 0, hi: 1, err: err})
	j.e.stats.failedLocally(1, err)
	f.next++
	return true
}

// reserve seals the feeder's open batch (if any), then waits until the
// window has room for one more batch and takes it. It reports false if
// the job stopped. Called with j.mu held.
func (j *job) reserve(f *filling) bool {
	if b := f.b; b != nil {
		if j.open == b { // else the flusher sealed it
			j.closeOpen()
		}
		if f.n > 0 {
			j.itemBytes = f.used/f.n + 1
		}
		f.b = nil
	}
	for !j.stopped && j.inWindow >= j.window {
		j.room.Wait()
	}
	if j.stopped {
		return false
	}
	j.inWindow++
	return true
}

// rotate seals the open batch and opens a new one with room for an item
// of n bytes.
func (j *job) rotate(f *filling, n int) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	if !j.reserve(f) {
		return false
	}
	// Every batch fits in one message: its items, their ends, the rest.
	room := j.e.l.maxPayload - messageOverhead
	per := max(j.itemBytes, n, 1)
	limit := max(1, min(j.e.batchSize(), room/(perItemOverhead+per)))
	size := max(min(limit*per*9/8+64, maxBatchBytes, room-limit*perItemOverhead), n)
	b := &openBatch{first: f.next, data: takeBuffer(&j.free, size), ends: takeBuffer(&j.freeEnds, limit), opened: time.Now()}
	*f = filling{b: b, next: f.next}
	j.open = b
	return true
}

// closeOpen seals the open batch if it holds items, else gives its place
// in the window back. Called with j.mu held.
func (j *job) closeOpen() {
	b := j.open
	if b == nil {
		return
	}
	if n := b.claim(); n > 0 {
		j.seal(b, n)
	} else {
		j.inWindow--
	}
	j.open = nil
}

// seal makes the first n items of the open batch b a batch and queues it
// for the publisher. Called with j.mu held.
func (j *job) seal(b *openBatch, n int) {
	ends := b.ends[:n]
	hb := &hbatch{seq: j.cut, first: b.first, n: n}
	j.cut++
	j.unanswered++
	j.batches[hb.seq] = hb
	j.ready = append(j.ready, &sealed{b: hb, data: b.data[:ends[n-1]], ends: ends})
	select {
	case j.kick <- struct{}{}:
	default:
	}
}

// publish publishes sealed batches in order, each with Msg-Id "job.seq"
// so a publish retried after a lost acknowledgement is stored once. Up to
// maxPublishing wait for their acknowledgements at once: one at a time, a
// round trip per batch (~1 ms) limited a job of small batches to ~1000
// batches/s.
func (j *job) publish() {
	type publishing struct {
		seq  uint64
		msg  *nats.Msg
		done jetstream.PubAckFuture
	}
	var out []publishing
	// settle waits for the oldest publish; one that failed is retried
	// until stored (or the job ends).
	settle := func() error {
		p := out[0]
		out = out[1:]
		select {
		case <-p.done.Ok():
			return nil
		case <-p.done.Err():
			return j.send(p.seq, p.msg.Data)
		case <-j.life.Done():
			return nil
		}
	}
	for {
		j.mu.Lock()
		var s *sealed
		if len(j.ready) > 0 {
			s = j.ready[0]
			j.ready[0] = nil
			j.ready = j.ready[1:]
		}
		j.mu.Unlock()
		if s == nil {
			var oldest <-chan *jetstream.PubAck
			var failed <-chan error
			if len(out) > 0 {
				oldest, failed = out[0].done.Ok(), out[0].done.Err()
			}
			select {
			case <-j.kick:
				continue
			case <-oldest:
				out = out[1:]
				continue
			case <-failed:
				p := out[0]
				out = out[1:]
				if err := j.send(p.seq, p.msg.Data); err != nil {
					j.stop(err)
					return
				}
				continue
			case <-j.life.Done():
				return
			}
		}
		// A fresh buffer each: nats.go keeps the message to retry it.
		msg := &nats.Msg{Subject: batchSubject(j.id), Data: appendTask(nil, s.b.seq, s.b.first, s.data, s.ends)}
		j.mu.Lock()
		if len(j.free) < 4 {
			j.free = append(j.free, s.data[:cap(s.data)])
			j.freeEnds = append(j.freeEnds, s.ends[:cap(s.ends)])
		}
		j.mu.Unlock()
		f, err := j.e.l.js.PublishMsgAsync(msg, jetstream.WithMsgID(j.msgID(s.b.seq)), jetstream.WithExpectStream(streamName))
		if err != nil {
			err = j.send(s.b.seq, msg.Data)
		} else {
			out = append(out, publishing{s.b.seq, msg, f})
			if len(out) >= maxPublishing {
				err = settle()
			}
		}
		if err != nil {
			j.stop(err)
			return
		}
	}
}

// maxPublishing bounds the batches a job publishes without their
// acknowledgement yet.
const maxPublishing = 16

func (j *job) msgID(seq uint64) string { return j.id + "." + strconv.FormatUint(seq, 10) }

// send publishes one batch, retrying until JetStream stores it or the job
// stops (a cluster electing a leader answers no one for a few seconds).
func (j *job) send(seq uint64, data []byte) error {
	msg := &nats.Msg{Subject: batchSubject(j.id), Data: data}
	msgID := j.msgID(seq)
	for delay := 50 * time.Millisecond; ; delay = min(2*delay, time.Second) {
		ctx, cancel := context.WithTimeout(j.life, 10*time.Second)
		_, err := j.e.l.js.PublishMsg(ctx, msg, jetstream.WithMsgID(msgID), jetstream.WithExpectStream(streamName))
		cancel()
		if err == nil {
			return nil
		}
		if errors.Is(err, jetstream.ErrStreamMessageExceedsMaximum) {
			return fmt.Errorf("%w: publishing a batch: %v", ErrConnect, err)
		}
		if j.life.Err() != nil {
			return nil
		}
		j.e.log.Warn("publishing a batch; retrying", "job", j.id, "batch", seq, "error", err)
		select {
		case <-j.life.Done():
			return nil
		case <-time.After(delay):
		}
		j.mu.Lock()
		stopped := j.stopped
		j.mu.Unlock()
		if stopped {
			return nil
		}
	}
}

// Partly filled batches: a batch is sealed before it is full when the
// input stalls (tail -f) and the job has nothing else in flight, or when
// it has been open for flushAfter.
const (
	flushTick  = 5 * time.Millisecond
	flushAfter = 100 * time.Millisecond
)

// flush seals the open batch when it should not wait for more input.
func (j *job) flush() {
	t := time.NewTicker(flushTick)
	defer t.Stop()
	for {
		select {
		case <-j.life.Done():
			return
		case <-t.C:
		}
		j.mu.Lock()
		if b := j.open; b != nil && (j.unanswered == 0 || time.Since(b.opened) >= flushAfter) {
			if n := b.claim(); n > 0 {
				j.seal(b, n)
				j.open = nil
				// The feeder finds its batch claimed at its next item and
				// reserves a new place in the window then.
			}
		}
		j.mu.Unlock()
	}
}

// takeBuffer returns a buffer of n elements from free, recycled when one
// is big enough, else new. Called with j.mu held.
func takeBuffer[T any](free *[][]T, n int) []T {
	for i, b := range *free {
		if cap(b) >= n {
			*free = append((*free)[:i], (*free)[i+1:]...)
			return b[:n]
		}
	}
	return make([]T, n)
}
