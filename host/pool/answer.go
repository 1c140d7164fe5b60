package pool

import (
	"errors"
	"fmt"
	"time"

	workerpb "github.com/pluginpool/pluginpool/sdk/proto"
)

// deliver records an answer from w: it advances w's head batch and
// resolves the answered items. An answer that breaks the protocol ends w.
func (p *Pool) deliver(w *worker, resp *workerpb.Batch) error {
	// Before the lock: they read every item boundary.
	if err := checkAnswer(resp); err != nil {
		return err
	}
	checkValues(resp)
	p.mu.Lock()
	if w.state != workerRunning {
		p.mu.Unlock()
		return nil // an ending generation's answers are dropped
	}
	if len(w.inflight) == 0 || w.inflight[0].seq != resp.Seq {
		p.mu.Unlock()
		return fmt.Errorf("%w: answer for batch %d, which is not the one running", errProtocol, resp.Seq)
	}
	b := w.inflight[0]
	n, start := len(resp.Ends), b.done
	if int(resp.First) != start || start+n > b.len() {
		p.mu.Unlock()
		return fmt.Errorf("%w: answer for items %d..%d of batch %d, which has %d of %d answered", errProtocol, resp.First, int(resp.First)+n, resp.Seq, start, b.len())
	}
	b.done += n
	w.answered += n
	w.watch.answered = true
	now := time.Now()
	w.progress = now
	if b.done == b.len() {
		w.inflight[0] = nil
		w.inflight = w.inflight[1:]
		began := w.headSince
		if b.sentAt.After(began) {
			began = b.sentAt
		}
		p.observe(b.len(), now.Sub(began))
		p.stats.batch(w.slot, b.len(), now.Sub(began))
		w.headSince = now
		if len(p.jobs) > 0 || len(p.retry) > 0 || p.cfg.MaxTasksPerWorker > 0 {
			// A sender may now cut, or retire its worker. Otherwise no
			// waiter's condition changed (nextRequest cuts only from jobs
			// and retries), and waking every sender after each answer of
			// a lone Apply cost the round trip CPU and wake-ups.
			p.cond.Broadcast()
		}
	}
	p.mu.Unlock()

	retry := p.resolveAnswer(b, start, resp)
	if len(retry) > 0 {
		p.requeue(b.top(), retry)
	}
	return nil
}

var errProtocol = errors.New("plugin broke the wire protocol")

// resolveAnswer stores the results of resp, which answers items start.. of
// b. It returns the root positions of items the plugin asked to retry
// that may run again.
func (p *Pool) resolveAnswer(b *batch, start int, resp *workerpb.Batch) (retry []int32) {
	root, j := b.top(), b.job
	errs, outs := resp.Errors, resp.Output
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.err != nil {
		return nil
	}
	// Only a response over MaxResultBytes can hold a result over it: the
	// SDK keeps them under, so only a rogue plugin takes the slow path.
	if b.pos == nil && len(errs) == 0 && len(outs) == 0 && len(resp.Data) <= p.cfg.MaxResultBytes {
		// The common case, about a tenth of the host's CPU in a 1M-item
		// map: a run of plain values into consecutive root positions.
		n := len(resp.Ends)
		if j.src == nil {
			// An Imap root keeps the run as it came (see valueRun). Its
			// ends are the root's now: a lane's reused Batch gets new ones.
			root.vals = append(root.vals, valueRun{start: start, data: resp.Data, ends: resp.Ends})
			resp.Ends = nil
		} else {
			res := root.results[start : start+n]
			prev := uint32(0)
			// Map's results are freshly zeroed: store the one pointer,
			// not the whole struct (each pointer store pays a write
			// barrier while the GC runs, which is most of a big Map).
			for i, end := range resp.Ends {
				if end > prev {
					res[i].Value = resp.Data[prev:end:end]
				}
				prev = end
			}
		}
		root.markRange(start, start+n)
		j.settle(root, n)
		p.stats.answered(n, 0, 0)
		return nil
	}
	prev, settled, failed, timeouts := uint32(0), 0, 0, 0
	for i, end := range resp.Ends {
		k := start + i // index within b
		r := Result{}
		if end > prev {
			r.Value = resp.Data[prev:end:end]
		}
		prev = end
		for len(outs) > 0 && int(outs[0].Index) < k {
			outs = outs[1:]
		}
		if len(outs) > 0 && int(outs[0].Index) == k {
			r.Output = outputLines(outs[0].Lines)
		}
		for len(errs) > 0 && int(errs[0].Index) < k {
			errs = errs[1:]
		}
		pos := b.rootPos(k)
		if len(r.Value) > p.cfg.MaxResultBytes {
			r = Result{Err: &TooLargeError{Size: len(r.Value), Limit: p.cfg.MaxResultBytes, Result: true}}
			failed++
		} else if len(errs) > 0 && int(errs[0].Index) == k {
			e := errs[0]
			if e.Kind == workerpb.ErrorKind_ERROR_KIND_RETRY && b.attempt < p.cfg.MaxAttempts {
				retry = append(retry, int32(pos))
				continue
			}
			r.Value = nil
			r.Err = p.taskError(e, b.attempt)
			failed++
			if e.Kind == workerpb.ErrorKind_ERROR_KIND_TIMEOUT {
				timeouts++
			}
		}
		*j.slot(root, pos) = r
		root.mark(pos)
		settled++
	}
	if settled > 0 {
		j.settle(root, settled)
	}
	p.stats.answered(settled-failed, failed, timeouts)
	return retry
}

// taskError turns a plugin's per-item error into the pool's.
func (p *Pool) taskError(e *workerpb.ItemError, attempt int) error {
	switch e.Kind {
	case workerpb.ErrorKind_ERROR_KIND_TIMEOUT:
		return &TimeoutError{Plugin: p.cfg.Name, Timeout: p.cfg.TaskTimeout}
	case workerpb.ErrorKind_ERROR_KIND_PANIC:
		return &TaskError{Plugin: p.cfg.Name, Kind: KindPanic, Message: string(e.Message), Attempt: attempt}
	case workerpb.ErrorKind_ERROR_KIND_DECODE:
		return &TaskError{Plugin: p.cfg.Name, Kind: KindDecode, Message: string(e.Message), Attempt: attempt}
	case workerpb.ErrorKind_ERROR_KIND_CANCELED:
		return &TaskError{Plugin: p.cfg.Name, Kind: KindCanceled, Message: string(e.Message), Attempt: attempt}
	}
	return &TaskError{Plugin: p.cfg.Name, Kind: KindError, Message: string(e.Message), Attempt: attempt}
}

// outputLines converts an item's printed lines to the strings Result
// carries. Go strings hold any bytes; printing them escaped is the
// writer's business.
func outputLines(lines [][]byte) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = string(l)
	}
	return out
}

// requeue queues root's items at pos, which asked to be retried, to run
// again one run later, through the same grouping as items a crash left
// unanswered (so a quarantined item stays alone).
func (p *Pool) requeue(root *batch, pos []int32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if root.job.stopped {
		return
	}
	root.ensureCounters()
	for _, i := range pos {
		root.runs[i]++
	}
	p.queueAgain(root, pos)
	p.stats.retried(len(pos))
	p.cond.Broadcast()
}

// checkAnswer validates a plugin's answer against the wire contract
// (worker.proto) on its own: its item boundaries run forwards within its
// data, and its errors and printed lines name items of this answer, in
// order. (Whether it answers the items next in line, deliver checks under
// the pool's lock.) An answer that breaks it fails with errProtocol and
// ends the worker, as a crash does; nothing of it is delivered. Its bytes
// come from the plugin: without this, boundaries running backwards made
// the host panic slicing them (only the last one was checked), and an
// error listed out of order was skipped, its item delivered as a success
// with no value.
func checkAnswer(resp *workerpb.Batch) error {
	first, n := int64(resp.First), int64(len(resp.Ends))
	prev := uint32(0)
	for i, end := range resp.Ends {
		if end < prev || int(end) > len(resp.Data) {
			return fmt.Errorf("%w: answer for batch %d: item %d ends at %d, after %d (data is %d bytes)", errProtocol, resp.Seq, first+int64(i), end, prev, len(resp.Data))
		}
		prev = end
	}
	next := first // the lowest index the next entry may name
	for _, e := range resp.Errors {
		if int64(e.Index) < next || int64(e.Index) >= first+n {
			return fmt.Errorf("%w: answer for batch %d (items %d..%d): an error for item %d, out of order or range", errProtocol, resp.Seq, first, first+n, e.Index)
		}
		next = int64(e.Index) + 1
	}
	next = first
	for _, o := range resp.Output {
		if int64(o.Index) < next || int64(o.Index) >= first+n {
			return fmt.Errorf("%w: answer for batch %d (items %d..%d): printed lines for item %d, out of order or range", errProtocol, resp.Seq, first, first+n, o.Index)
		}
		next = int64(o.Index) + 1
	}
	return nil
}
