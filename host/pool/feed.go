package pool

import (
	"iter"
)

// The Imap feeder copies items from the caller's iterator into the job's
// open batch. It takes no lock per item (a lock per item measured ~18% of
// the CLI's CPU on a 1M-line map): it writes each item past the batch's
// published count and then publishes it with one compare-and-swap. An idle
// worker may claim the open batch at any time, as far as it is published
// (so a slow or stalled input never leaves a worker waiting for a batch to
// fill); the claim flips a bit that makes the feeder's next publish fail,
// and the feeder moves that item to a fresh batch.

// claimed marks a batch's fill word once its items are taken.
const claimed = 1 << 63

// filling is the feeder's own view of the open batch; only the feeder
// goroutine touches it.
type filling struct {
	b    *batch
	data []byte   // the batch's data buffer, whole
	ends []uint32 // the batch's ends buffer, whole
	used int      // bytes written
	n    int      // items written
	next int      // job-wide index of the next item
}

// claim takes the open batch b's published items, if there are any, and
// shapes b to hold exactly them. It returns how many it took.
func (b *batch) claim() int {
	for {
		s := b.fill.Load()
		if s&claimed != 0 || s == 0 {
			return 0
		}
		if b.fill.CompareAndSwap(s, s|claimed) {
			n := int(s)
			b.ends = b.ends[:n]
			b.data = b.data[:b.ends[n-1]]
			return n
		}
	}
}

// feed copies items into open batches until the input ends or the job
// stops, then seals what is left.
func (p *Pool) feed(j *job, items iter.Seq[[]byte]) {
	f := &filling{}
	for it := range items {
		if !p.add(j, f, it) {
			return
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	j.fed = true
	if f.b != nil && f.b.claim() > 0 && !j.stopped {
		j.seal(p, f.b)
		j.ready = append(j.ready, f.b)
	}
	j.open = nil
	if len(j.ready) == 0 {
		p.dropJob(j)
	}
	p.cond.Broadcast()
	j.signal()
}

// add appends one item to the open batch. It reports false when the job
// stopped and wants no more input.
func (p *Pool) add(j *job, f *filling, it []byte) bool {
	for {
		if f.b == nil || f.used+len(it) > len(f.data) || f.n == len(f.ends) {
			if !p.rotate(j, f, len(it)) {
				p.strand(j, f, it)
				return false
			}
		}
		copy(f.data[f.used:], it)
		f.ends[f.n] = uint32(f.used + len(it))
		if f.b.fill.CompareAndSwap(uint64(f.n), uint64(f.n+1)) {
			f.used += len(it)
			f.n++
			f.next++
			if f.n == 1 {
				// An idle worker may be waiting for anything at all. Under
				// the lock, so it cannot miss the wake-up.
				p.mu.Lock()
				p.cond.Broadcast()
				p.mu.Unlock()
			}
			return true
		}
		f.b = nil // claimed meanwhile: the item goes into a fresh batch
	}
}

// strand gives the item the feeder read but could not place, because the
// job stopped meanwhile, a batch of its own resolved to the job's stop
// error: every item read yields exactly one result. Imap yields it after
// the feeder is done.
func (p *Pool) strand(j *job, f *filling, it []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	j.stranded = &batch{job: j, index: f.next, results: []Result{{Err: j.stopErr}}}
	if j.degraded {
		p.stats.addNotRun(1)
	}
}

// rotate seals the feeder's open batch (if it has one, once the job has
// room for another) and opens a new one with room for an item of size n.
func (p *Pool) rotate(j *job, f *filling, n int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if b := f.b; b != nil {
		for !j.stopped && (len(j.ready) > 0 || j.window >= j.maxWindow) {
			p.cond.Wait()
		}
		if j.stopped {
			return false
		}
		if b.claim() > 0 { // not taken by an idle worker meanwhile
			j.seal(p, b)
			j.ready = append(j.ready, b)
			p.cond.Broadcast()
		}
		if f.n > 0 {
			j.itemBytes = f.used/f.n + 1
		}
	}
	if j.stopped {
		return false
	}
	limit := p.batchSize()
	size := max(min(limit*max(j.itemBytes, n)*9/8+64, maxBatchBytes), n)
	b := &batch{job: j, attempt: 1, index: f.next, data: takeBuffer(&j.freeData, size), ends: takeBuffer(&j.freeEnds, limit)}
	*f = filling{b: b, data: b.data, ends: b.ends, next: f.next}
	j.open = b
	return true
}

// takeBuffer returns a buffer of n elements from free, recycled when one
// is big enough, else new. Called with p.mu held.
func takeBuffer[T any](free *[][]T, n int) []T {
	for i, b := range *free {
		if cap(b) >= n {
			*free = append((*free)[:i], (*free)[i+1:]...)
			return b[:n]
		}
	}
	return make([]T, n)
}
