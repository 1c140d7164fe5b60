package pool

import (
	"context"
	"time"

	workerpb "github.com/pluginpool/pluginpool/sdk/proto"
)

// Batch sizing. A batch should be a few milliseconds of work: big enough
// that the per-batch round trip (~100 µs) is noise, small enough that
// workers finish together. Measured with a prototype on 2 cores: batches of
// ~16k trivial items beat 4k (68 vs 90 ms for 1M ints).
const (
	targetBatchTime = 4 * time.Millisecond
	maxBatchItems   = 16384
	maxBatchBytes   = 1 << 20
)

// nextRequest blocks until w has something to send: a cancel, or a batch
// when w has room for one. It returns nil when w is to stop sending.
func (p *Pool) nextRequest(w *worker) *workerpb.Batch {
	p.mu.Lock()
	w.sending = false // the previous message, if any, is sent
	for {
		if w.state != workerRunning {
			p.mu.Unlock()
			return nil
		}
		if w.direct {
			// A caller is sending w a batch (sendDirect): what this
			// sender sends next must follow it.
			w.directWait = true
			p.cond.Wait()
			continue
		}
		if len(w.cancels) > 0 {
			seq := w.cancels[0]
			w.cancels = w.cancels[1:]
			w.sending = true
			p.mu.Unlock()
			return &workerpb.Batch{Seq: seq, Cancel: true}
		}
		recycle := p.cfg.MaxTasksPerWorker > 0 && w.tasks >= p.cfg.MaxTasksPerWorker
		if recycle && len(w.inflight) == 0 {
			w.endLocked(errRecycle)
			continue
		}
		alone := len(w.inflight) > 0 && w.inflight[0].single // nothing may follow it
		if !recycle && !alone && len(w.inflight) < p.cfg.InFlight {
			if b := p.cut(w); b != nil {
				p.assign(w, b)
				w.sending = true
				p.mu.Unlock()
				return b.request(w.message())
			}
		}
		p.cond.Wait()
	}
}

// assign puts b on w's wire: the next sequence number, the clocks, the
// task count. Called with p.mu held, just before b is sent.
func (p *Pool) assign(w *worker, b *batch) {
	now := time.Now()
	w.seq++
	b.w, b.seq, b.sentAt, b.done = w, w.seq, now, 0
	if len(w.inflight) == 0 {
		w.headSince, w.progress = now, now
		if !w.callerRead {
			w.wakeReader()
		}
	}
	w.inflight = append(w.inflight, b)
	w.tasks += b.len()
}

// A direct send: the caller of Map (and so Apply) sends its job's first
// batch to an idle worker itself, instead of waking that worker's sender
// to do it. A round trip of one item is wake-ups, not CPU (W3 in
// bench/README.md), and this is one goroutine hand-over fewer.
type direct struct {
	w    *worker
	b    *batch
	read bool // the caller reads the answers too (readDirect)
}

// takeIdle cuts Map job j's first batch for an idle worker and reserves
// that worker's stream for the caller, who must then call sendDirect. It
// returns false when no worker is idle, or there is something to send
// before j (retries), or the batch had nothing to send (sendable). Called
// with p.mu held, as j joins p.jobs.
func (p *Pool) takeIdle(j *job) (direct, bool) {
	if len(p.retry) > 0 || j.src == nil {
		return direct{}, false
	}
	n := len(p.workers)
	for i := range n {
		w := p.workers[(p.nextIdle+i)%n]
		if w == nil || w.state != workerRunning || len(w.inflight) > 0 || len(w.cancels) > 0 || w.sending || w.direct {
			continue
		}
		limit := p.batchSize()
		if m := p.cfg.MaxTasksPerWorker; m > 0 {
			if w.tasks >= m {
				continue // its sender retires it
			}
			limit = min(limit, m-w.tasks)
		}
		// Next time, look here first: sequential Applies keep to one
		// process, whose threads are still warm. Taking turns between
		// the two workers made W3's p50 ~30% slower (BenchmarkApply).
		p.nextIdle = (p.nextIdle + i) % n
		b := p.cutMap(j, limit)
		if b == nil {
			return direct{}, false
		}
		// The whole job in one batch on an idle lane (an Apply, a small
		// Map): its caller reads the answers as well, before assign
		// could wake recvLoop for them.
		w.callerRead = w.lane != nil && j.next == len(j.src) && !w.exited
		p.assign(w, b)
		w.direct = true
		// run waits for the send like for its own loops: w is running,
		// so neither loop has ended and the count is not zero.
		w.loops.Add(1)
		return direct{w: w, b: b, read: w.callerRead}, true
	}
	return direct{}, false
}

// sendDirect sends the batch takeIdle reserved, and hands the stream back
// to the worker's sender. A failed send ends the worker, as in sendLoop:
// retire then runs the batch elsewhere.
func (p *Pool) sendDirect(d direct) {
	w := d.w
	defer w.loops.Done()
	err := w.stream.Send(d.b.request(w.message()))
	p.mu.Lock()
	w.direct = false
	if w.directWait {
		w.directWait = false
		p.cond.Broadcast()
	}
	p.mu.Unlock()
	if err != nil {
		w.end(streamError(err))
	}
}

// readDirect reads w's answers on the caller's goroutine, the one
// takeIdle gave the lane's reading to, until job j is done, w ends, or
// ctx is cancelled; then recvLoop reads again. One answer of one item is
// then two wake-ups, one per process, where recvLoop handing each answer
// to the caller's goroutine cost a third, on the host's critical path
// (W3 in bench/README.md). A cancelled ctx interrupts the read between
// or inside frames without losing the lane's place (Lane.Interrupt):
// recvLoop goes on from there, and the caller cancels as Map does.
func (p *Pool) readDirect(ctx context.Context, d direct, j *job) {
	w := d.w
	stop := func() bool { return true } // a ctx that is never done
	var interrupted chan struct{}
	if ctx.Done() != nil {
		interrupted = make(chan struct{})
		stop = context.AfterFunc(ctx, func() {
			w.lane.Interrupt()
			close(interrupted)
		})
	}
	for !j.finished() && w.receive() {
	}
	if !stop() {
		<-interrupted // then undo it, for the next reader
		w.lane.Resume()
	}
	p.mu.Lock()
	w.callerRead = false
	if len(w.inflight) > 0 || w.exited {
		w.wakeReader()
	}
	p.mu.Unlock()
}

// awaitAnswers blocks recvLoop until it has answers to read on w's lane:
// a batch in flight that no caller reads for, or the end of what an
// exited process wrote. It returns false once w has ended.
func (p *Pool) awaitAnswers(w *worker) bool {
	for {
		p.mu.Lock()
		running, ready := w.state == workerRunning, (len(w.inflight) > 0 || w.exited) && !w.callerRead
		p.mu.Unlock()
		if !running {
			return false
		}
		if ready {
			return true
		}
		select {
		case <-w.toRead:
		case <-w.ctx.Done():
		}
	}
}

// wakeReader tells recvLoop to look at awaitAnswers' condition again.
func (w *worker) wakeReader() {
	select {
	case w.toRead <- struct{}{}:
	default:
	}
}

// batchSize is how many items the next batch should hold. Called with
// p.mu held.
func (p *Pool) batchSize() int {
	if p.cfg.ChunkSize > 0 {
		return p.cfg.ChunkSize
	}
	return p.size
}

// observe adapts the batch size to a batch of n items that took d at the
// head of its worker's queue. Called with p.mu held.
//
// Sizes grow at most 2x per observation, starting from 1, so a plugin with
// slow tasks never gets a large first batch; they shrink at once when a
// batch took longer than the target. Small batches (a stolen partial
// batch, a retry) are mostly round-trip time and do not grow the size.
func (p *Pool) observe(n int, d time.Duration) {
	if n == 0 || d <= 0 {
		return
	}
	want := int(float64(n) * float64(targetBatchTime) / float64(d))
	switch {
	case d > targetBatchTime:
		p.size = max(1, min(want, p.size))
	case 2*n >= p.size:
		p.size = min(max(want, p.size), 2*p.size, maxBatchItems)
	}
}

// cut hands worker w its next batch, or nil when there is none for it.
// Called with p.mu held. Retries go first, then jobs in turn.
func (p *Pool) cut(w *worker) *batch {
	if len(p.retry) > 0 {
		b := p.retry[0]
		if b.single && len(w.inflight) > 0 {
			// A quarantined item runs on a worker with nothing else in
			// flight (see retire). w takes nothing else meanwhile, or
			// busy workers would never drain and it would wait forever.
			return nil
		}
		p.retry[0] = nil
		p.retry = p.retry[1:]
		return b
	}
	limit := p.batchSize()
	if m := p.cfg.MaxTasksPerWorker; m > 0 {
		limit = min(limit, m-w.tasks)
	}
	for range len(p.jobs) {
		p.rr = (p.rr + 1) % len(p.jobs)
		j := p.jobs[p.rr]
		var b *batch
		if j.src != nil {
			b = p.cutMap(j, limit)
		} else {
			b = p.cutStream(j, w)
		}
		if b != nil {
			return b
		}
	}
	return nil
}

// cutMap cuts the next root batch of a Map job.
func (p *Pool) cutMap(j *job, limit int) *batch {
	n := len(j.src)
	if j.next >= n {
		return nil
	}
	// Python's default chunksize: the input spread four times over the
	// workers, so the tail is shared.
	spread := (n + 4*p.cfg.Workers - 1) / (4 * p.cfg.Workers)
	k, bytes, largest := 0, 0, 0
	for k < min(limit, spread, n-j.next) {
		sz := len(j.src[j.next+k])
		if k > 0 && bytes+sz > maxBatchBytes {
			break
		}
		bytes += sz
		largest = max(largest, sz)
		k++
	}
	b := j.newRoot(p, j.next, j.src[j.next:j.next+k:j.next+k])
	if largest > p.cfg.MaxItemBytes {
		b.tooLarge.Store(true)
	}
	j.next += k
	if j.next == n {
		p.dropJob(j)
	}
	return p.sendable(b)
}

// cutStream takes an Imap job's next full batch, or its partly filled one
// when w is idle (so a slow or stalled input never leaves a worker waiting
// on a batch that is not full).
func (p *Pool) cutStream(j *job, w *worker) *batch {
	if len(j.ready) > 0 {
		b := j.ready[0]
		j.ready[0] = nil
		j.ready = j.ready[1:]
		if j.fed && len(j.ready) == 0 {
			p.dropJob(j)
		}
		p.cond.Broadcast() // the feeder may wait for room in ready
		return p.sendable(b)
	}
	if b := j.open; b != nil && len(w.inflight) == 0 && j.window < j.maxWindow && b.claim() > 0 {
		j.open = nil
		j.seal(p, b)
		return p.sendable(b)
	}
	return nil
}

// sendable resolves the items of root b that must not be sent (too large)
// and returns what is left to send: b itself, a retry batch with the rest,
// or nil. Called with p.mu held.
func (p *Pool) sendable(b *batch) *batch {
	if !b.tooLarge.Load() {
		return b // no item to look at: this scan was ~35 instructions an item
	}
	var big []int32
	for i := range b.len() {
		if len(b.item(i)) > p.cfg.MaxItemBytes {
			big = append(big, int32(i))
		}
	}
	if big == nil {
		return b
	}
	for _, i := range big {
		b.job.resolve(b, int(i), Result{Err: &TooLargeError{Size: len(b.item(int(i))), Limit: p.cfg.MaxItemBytes}})
	}
	if len(big) == b.len() {
		return nil
	}
	rest := make([]int32, 0, b.len()-len(big))
	for i, k := 0, 0; i < b.len(); i++ {
		if k < len(big) && big[k] == int32(i) {
			k++
			continue
		}
		rest = append(rest, int32(i))
	}
	return newRetry(b, rest, 1)
}

// newRetry builds a batch of root's items at positions pos, for run attempt.
func newRetry(root *batch, pos []int32, attempt int) *batch {
	b := &batch{job: root.job, root: root, pos: pos, attempt: attempt, src: make([][]byte, len(pos))}
	for i, p := range pos {
		b.src[i] = root.item(int(p))
	}
	return b
}

// dropJob stops cutting from j. Called with p.mu held.
func (p *Pool) dropJob(j *job) {
	for i, x := range p.jobs {
		if x == j {
			p.jobs = append(p.jobs[:i], p.jobs[i+1:]...)
			if p.rr >= i && p.rr > 0 {
				p.rr--
			}
			return
		}
	}
}
