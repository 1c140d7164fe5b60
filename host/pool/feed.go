package pool

import (
	"iter"

	"github.com/pluginpool/pluginpool/host/backend"
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
func (b *batch) claim() int { return b.take(false) }

// shut claims the open batch b for good, as claim does, but even with
// nothing published: the feeder's next publish then fails. A job that
// stops shuts its open batch: left unclaimed while empty, it took the
// feeder's next items, and no one ever sent or resolved them.
func (b *batch) shut() int { return b.take(true) }

func (b *batch) take(empty bool) int {
	for {
		s := b.fill.Load()
		if s&claimed != 0 || s == 0 && !empty {
			return 0
		}
		if b.fill.CompareAndSwap(s, s|claimed) {
			n := int(s)
			if n > 0 {
				b.ends = b.ends[:n]
				b.data = b.data[:b.ends[n-1]]
			}
			return n
		}
	}
}

// A source is an Imap job's input: an iterator of items, which the feeder
// copies into batches, or n items that fill writes into a batch's buffers
// itself (the typed caller's Map, which encodes a run of items in one call:
// the iterator's and the encoder's calls per item, the copy and the
// publishing were ~20% of the host's CPU in a 1M-item typed Map).
type source struct {
	items iter.Seq[[]byte]
	runs  iter.Seq[[][]byte] // or runs of items, copied in a run at a time
	n     int
	// fill appends items from.. to data, as codec.EncodeRun does (each
	// one's end in ends, as many as fit in data's capacity and in ends),
	// and returns how many and data. skipped: the item after them is not
	// to be sent (fill recorded why). None and not skipped: item from does
	// not fit.
	fill func(from int, data []byte, ends []uint32) (k int, out []byte, skipped bool)
}

// all yields the source's items one by one.
func (s source) all() iter.Seq[[]byte] {
	switch {
	case s.items != nil:
		return s.items
	case s.runs != nil:
		return backend.Items(s.runs)
	}
	return func(yield func([]byte) bool) {
		var buf []byte
		for i := range s.n {
			if b, ok := s.one(i, buf); ok {
				if buf = b; !yield(b) {
					return
				}
			}
		}
	}
}

// one encodes item i alone, in buf or, if it does not fit, in a buffer of
// its own as large as it takes. It reports false if item i is skipped.
func (s source) one(i int, buf []byte) ([]byte, bool) {
	var end [1]uint32
	for {
		k, b, skipped := s.fill(i, buf[:0], end[:])
		switch {
		case k == 1:
			return b, true
		case skipped:
			return nil, false
		}
		buf = make([]byte, 0, 2*cap(buf)+64)
	}
}

// fillRun is how many items the feeder has fill encode at a time, and
// then publishes together: an idle worker finds at most this many fewer
// in the open batch than the input could have given it.
const fillRun = 256

// feed copies items into open batches until the input ends or the job
// stops, then seals what is left.
func (p *Pool) feed(j *job, src source) {
	f := &filling{}
	switch {
	case src.items != nil:
		for it := range src.items {
			if !p.add(j, f, it) {
				return
			}
		}
	case src.runs != nil:
		for run := range src.runs {
			if !p.addRun(j, f, run) {
				return
			}
		}
	default:
		if !p.feedRuns(j, f, src) {
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

// add appends one item to the open batch: addRun for a run of one,
// without its loop (as a run of one, the per-item Imap's feeder spent ~10
// ns an item more). It reports false when the job stopped and wants no
// more input.
func (p *Pool) add(j *job, f *filling, it []byte) bool {
	for {
		if f.b == nil || f.used+len(it) > len(f.data) || f.n == len(f.ends) {
			if !p.rotate(j, f, len(it)) {
				p.strand(j, f, 1)
				return false
			}
		}
		if len(it) > p.cfg.MaxItemBytes {
			f.b.tooLarge.Store(true) // before the item is published
		}
		copy(f.data[f.used:], it)
		f.ends[f.n] = uint32(f.used + len(it))
		if p.publish(f, 1, f.used+len(it)) {
			return true
		}
	}
}

// addRun copies a run of items into open batches, as many at a time as
// fit (at most fillRun), publishing them together. It reports false when
// the job stopped and wants no more input.
func (p *Pool) addRun(j *job, f *filling, run [][]byte) bool {
	for len(run) > 0 {
		if f.b == nil || f.n == len(f.ends) {
			if !p.rotate(j, f, len(run[0])) {
				p.strand(j, f, len(run))
				return false
			}
		}
		k, used, big := 0, f.used, false
		for limit := min(len(run), len(f.ends)-f.n, fillRun); k < limit; k++ {
			it := run[k]
			if used+len(it) > len(f.data) {
				break
			}
			big = big || len(it) > p.cfg.MaxItemBytes
			used += copy(f.data[used:], it)
			f.ends[f.n+k] = uint32(used)
		}
		if k == 0 {
			// The next item does not fit in what is left of the batch: a
			// fresh one has room for it.
			if !p.rotate(j, f, len(run[0])) {
				p.strand(j, f, len(run))
				return false
			}
			continue
		}
		if big {
			f.b.tooLarge.Store(true) // before the items are published
		}
		// Claimed meanwhile: the same items go into a fresh batch.
		if p.publish(f, k, used) {
			run = run[k:]
		}
	}
	return true
}

// publish publishes the k items the feeder wrote into its open batch past
// the published ones (their ends set), which now fill it up to used. It
// reports false if an idle worker claimed the batch meanwhile: then f has
// no batch, and the items are to go into a fresh one.
func (p *Pool) publish(f *filling, k, used int) bool {
	if !f.b.fill.CompareAndSwap(uint64(f.n), uint64(f.n+k)) {
		f.b = nil
		return false
	}
	first := f.n == 0
	f.used = used
	f.n += k
	f.next += k
	if first {
		// An idle worker may be waiting for anything at all. Under the
		// lock, so it cannot miss the wake-up.
		p.mu.Lock()
		p.cond.Broadcast()
		p.mu.Unlock()
	}
	return true
}

// feedRuns has src.fill write runs of items straight into the open
// batch's buffers, and publishes each run at once. It reports false when
// the job stopped and wants no more input.
func (p *Pool) feedRuns(j *job, f *filling, src source) bool {
	for i := 0; i < src.n; {
		if f.b == nil || f.n == len(f.ends) {
			if !p.rotate(j, f, 0) {
				return false // item i was not read: the caller's to count
			}
		}
		ends := f.ends[f.n:min(len(f.ends), f.n+fillRun)]
		k, data, skipped := src.fill(i, f.data[:f.used:len(f.data)], ends)
		if k > 0 {
			if len(data)-f.used > p.cfg.MaxItemBytes && tooLarge(f.used, ends[:k], p.cfg.MaxItemBytes) {
				f.b.tooLarge.Store(true) // before the items are published
			}
			if !p.publish(f, k, len(data)) {
				// Claimed meanwhile: the items go into a fresh batch, from
				// a copy (the claimed batch's buffers are reused once it
				// is answered).
				base := uint32(f.used)
				copied := append([]byte(nil), data[base:]...)
				run, prev := make([][]byte, k), base
				for i, end := range ends[:k] {
					run[i] = copied[prev-base : end-base]
					prev = end
				}
				if !p.addRun(j, f, run) {
					return false
				}
			}
		}
		i += k
		switch {
		case skipped:
			i++
		case k == 0 && f.n > 0:
			// Item i does not fit in what is left of the batch: the next
			// one has room.
			if !p.rotate(j, f, 0) {
				return false
			}
		case k == 0:
			// Nor in a whole fresh batch: encoded alone, then copied into
			// a batch of its size.
			if it, ok := src.one(i, nil); ok && !p.add(j, f, it) {
				return false
			}
			i++
		}
	}
	return true
}

// tooLarge reports whether any item of a run, from start and ending at
// ends, is larger than limit.
func tooLarge(start int, ends []uint32, limit int) bool {
	prev := uint32(start)
	for _, end := range ends {
		if int(end-prev) > limit {
			return true
		}
		prev = end
	}
	return false
}

// strand gives the n items the feeder read but could not place, because
// the job stopped meanwhile, a batch of their own resolved to the job's
// stop error: every item read yields exactly one result. Imap yields them
// after the feeder is done.
func (p *Pool) strand(j *job, f *filling, n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	b := &batch{job: j, index: f.next, results: make([]Result, n)}
	for i := range b.results {
		b.results[i].Err = j.stopErr
	}
	j.stranded = b
	if j.degraded {
		p.stats.addNotRun(n)
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
// is big enough (the smallest such), else new. Called with p.mu held.
func takeBuffer[T any](free *[][]T, n int) []T {
	best := -1
	for i, b := range *free {
		if cap(b) >= n && (best < 0 || cap(b) < cap((*free)[best])) {
			best = i
		}
	}
	if best < 0 {
		return make([]T, n)
	}
	b := (*free)[best]
	last := len(*free) - 1
	(*free)[best], (*free)[last] = (*free)[last], nil
	*free = (*free)[:last]
	return b[:n]
}

// keepBuffer adds b to free for takeBuffer, keeping at most limit
// buffers: when full, b replaces the smallest if it is larger (batches
// grow as a job goes on, and small buffers fit fewer of them).
func keepBuffer[T any](free *[][]T, b []T, limit int) {
	if cap(b) == 0 {
		return
	}
	b = b[:0]
	if len(*free) < limit {
		*free = append(*free, b)
		return
	}
	small := 0
	for i, x := range *free {
		if cap(x) < cap((*free)[small]) {
			small = i
		}
	}
	if cap(b) > cap((*free)[small]) {
		(*free)[small] = b
	}
}
