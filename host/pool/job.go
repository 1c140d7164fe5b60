package pool

import (
	"context"
	"errors"
	"sync"
)

// A job is one call's worth of items: a Map, an Imap iteration, an Apply.
type job struct {
	ctx     context.Context
	ordered bool // Imap: results leave in input order

	// Input side, guarded by Pool.mu.
	src       [][]byte   // Map: every item; nil for Imap
	next      int        // Map: the next item to cut
	open      *batch     // Imap: the batch the feeder is filling
	itemBytes int        // Imap: average item size seen, to size buffers
	freeData  [][]byte   // Imap: data buffers of consumed roots, for reuse
	freeEnds  [][]uint32 // Imap: ends buffers of consumed roots, for reuse
	ready     []*batch   // Imap: sealed batches waiting for a worker
	fed       bool       // Imap: the input is exhausted (or the job stopped)
	cut       int        // root batches cut so far
	window    int        // Imap: root batches cut but not yet consumed
	maxWindow int        // Imap: bound on window: results held in memory
	stopped   bool       // failed or abandoned: cut nothing more
	degraded  bool       // stopped because the pool degraded: items on the wire are retire's to settle
	stopErr   error      // why the job stopped
	stranded  *batch     // Imap: the items the feeder held when the job stopped (see strand)

	// Output side, guarded by mu.
	mu       sync.Mutex
	err      error          // set when the job failed; later answers are dropped
	results  []Result       // Map: every result
	free     [][]Result     // Imap: results arrays of consumed roots, for reuse
	left     int            // Map: items not yet resolved
	live     roots          // roots not yet complete
	complete map[int]*batch // Imap ordered: complete roots by rootSeq
	queue    []*batch       // Imap unordered: complete roots
	wake     chan struct{}  // cap 1: something above changed
}

func newJob(ctx context.Context) *job {
	return &job{ctx: ctx, wake: make(chan struct{}, 1)}
}

// roots is a job's roots not yet complete. Most jobs (an Apply, a small
// Map) only ever have one, kept without a map: an Apply allocated ~200 of
// its ~1,150 bytes for the map, and each byte brings the calling
// program's next collection nearer (W3's p99 in bench/README.md).
type roots struct {
	one  *batch         // the only root, while there has been only one
	more map[int]*batch // by rootSeq, once there were two
}

func (r *roots) add(b *batch) {
	if r.more == nil {
		if r.one == nil {
			r.one = b
			return
		}
		r.more = map[int]*batch{r.one.rootSeq: r.one}
		r.one = nil
	}
	r.more[b.rootSeq] = b
}

func (r *roots) remove(b *batch) {
	if r.one == b {
		r.one = nil
		return
	}
	delete(r.more, b.rootSeq)
}

// list returns the roots, in no order, as a slice of their own.
func (r *roots) list() []*batch {
	if r.one != nil {
		return []*batch{r.one}
	}
	l := make([]*batch, 0, len(r.more))
	for _, b := range r.more {
		l = append(l, b)
	}
	return l
}

// finished reports whether every item of a Map job is resolved.
func (j *job) finished() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.left == 0
}

func (j *job) signal() {
	select {
	case j.wake <- struct{}{}:
	default:
	}
}

// newRoot makes a root batch over items, starting at job index index.
// Called with p.mu held.
func (j *job) newRoot(p *Pool, index int, items [][]byte) *batch {
	b := &batch{job: j, src: items, index: index, attempt: 1}
	j.register(p, b)
	if j.results != nil {
		b.results = j.results[index : index+len(items) : index+len(items)]
	}
	return b
}

// seal makes the feeder's batch b a root. Called with p.mu held.
func (j *job) seal(p *Pool, b *batch) {
	j.register(p, b)
	j.window++
}

// slot returns where root b's result at pos goes. An Imap root has a
// results array only once an item needs one: most are answered in runs of
// plain values (vals), and never do. Called with j.mu held.
func (j *job) slot(b *batch, pos int) *Result {
	if b.results == nil {
		b.results = takeBuffer(&j.free, b.len())
	}
	return &b.results[pos]
}

// recycle returns a consumed root's buffers for reuse: allocating and
// zeroing 64 bytes per item was a tenth of the host's CPU in a 1M-item
// Imap. Every position of a results array is overwritten before it is
// read again. Called with p.mu held.
func (j *job) recycle(b *batch) {
	// As many as the job may hold at once: a 1M-item Imap then allocates
	// about a window's worth (it allocated 36 MB of results arrays when it
	// kept 4, and took one only if the last kept was large enough).
	keep := j.maxWindow + 2
	j.mu.Lock()
	keepBuffer(&j.free, b.results, keep)
	j.mu.Unlock()
	b.results, b.vals = nil, nil
	// Its items' buffers too, unless the job stopped: a batch resolved by
	// stopJob may still be on its way to a worker. A batch answered in
	// full is not: its request was encoded before any answer could come.
	// Nor are its items dropped then: the worker's answer to the cancel is
	// checked against the batch's length.
	if j.stopped {
		return
	}
	keepBuffer(&j.freeData, b.data, keep)
	keepBuffer(&j.freeEnds, b.ends, keep)
	b.data, b.ends = nil, nil
}

func (j *job) register(p *Pool, b *batch) {
	b.rootSeq = j.cut
	j.cut++
	b.pending = b.len()
	if k := (b.len() + 63) / 64; k <= len(b.got1) {
		b.got = b.got1[:k]
	} else {
		b.got = make([]uint64, k)
	}
	b.baseID = p.nextID
	p.nextID += uint64(b.len())
	j.mu.Lock()
	j.live.add(b)
	j.mu.Unlock()
}

// resolve sets the result at position pos of root b. Results after the
// job failed are dropped: the job already resolved every item.
func (j *job) resolve(b *batch, pos int, r Result) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.err != nil {
		return
	}
	*j.slot(b, pos) = r
	b.mark(pos)
	j.settle(b, 1)
}

// settle counts n newly resolved items of root b. Called with j.mu held.
func (j *job) settle(b *batch, n int) {
	b.pending -= n
	if j.src != nil {
		j.left -= n
		if j.left == 0 {
			j.signal()
		}
	}
	if b.pending > 0 {
		return
	}
	j.live.remove(b)
	if j.src != nil {
		return
	}
	if j.ordered {
		j.complete[b.rootSeq] = b
	} else {
		j.queue = append(j.queue, b)
	}
	j.signal()
}

// stopJob ends the job with err: nothing more is cut, work in flight is
// cancelled, and every unresolved item resolves to err. Safe to call more
// than once; the first error wins.
func (p *Pool) stopJob(j *job, err error) { p.endJob(j, err, false) }

// endJob is stopJob, or, with degraded set, the end of a job whose pool
// degraded: its items on the wire are left unresolved for their workers'
// retire (the pool is killing those workers), which knows from the start
// ledger whether they ran; the others resolve to err, a *NotRunError.
func (p *Pool) endJob(j *job, err error, degraded bool) {
	p.mu.Lock()
	if j.stopped {
		p.mu.Unlock()
		return
	}
	j.stopped, j.fed, j.degraded, j.stopErr = true, true, degraded, err
	p.dropJob(j)
	// Sealed and open batches were never sent: they resolve below with the
	// rest of the live roots.
	if j.open != nil && j.open.shut() > 0 {
		j.seal(p, j.open)
	}
	j.open, j.ready = nil, nil
	// So were a Map's items not cut yet: without a root they would never
	// resolve, and Map (waiting for every item) would never return.
	if n := len(j.src); j.next < n {
		j.newRoot(p, j.next, j.src[j.next:n:n])
		j.next = n
	}
	// Drop queued retries; cancel what is on the wire.
	keep := p.retry[:0]
	for _, b := range p.retry {
		if b.job != j {
			keep = append(keep, b)
		}
	}
	clear(p.retry[len(keep):])
	p.retry = keep
	type place struct {
		root *batch
		pos  int
	}
	var wire map[place]bool // degraded: items left to retire
	type cancel struct {
		w   *worker
		seq uint64
	}
	var cancels []cancel // sent once the items resolved to err (below)
	for _, w := range p.workers {
		if w == nil {
			continue // slot restarting: nothing on its wire
		}
		for _, b := range w.inflight {
			if b.job != j {
				continue
			}
			if !degraded {
				cancels = append(cancels, cancel{w, b.seq})
				continue
			}
			if wire == nil {
				wire = make(map[place]bool)
			}
			for i := b.done; i < b.len(); i++ {
				wire[place{b.top(), b.rootPos(i)}] = true
			}
		}
	}
	p.cond.Broadcast()
	p.mu.Unlock()

	j.mu.Lock()
	if j.err != nil {
		j.mu.Unlock()
		return
	}
	n := 0
	for _, b := range j.live.list() {
		for i := range b.len() {
			if !b.has(i) && !wire[place{b, i}] {
				*j.slot(b, i) = Result{Err: err}
				b.mark(i)
				j.settle(b, 1)
				n++
			}
		}
	}
	if degraded {
		// retire settles the items on the wire: no j.err, which would
		// drop what it resolves them to.
		p.stats.addNotRun(n)
	} else {
		j.err = err
	}
	j.signal()
	j.mu.Unlock()

	// Only now cancel what is on the wire: had the cancels gone out first,
	// the plugin's answers to them (ERROR_KIND_CANCELED) could resolve
	// items before they resolved to err, and a cancelled Map would report
	// task errors instead of ctx's.
	if len(cancels) > 0 {
		p.mu.Lock()
		for _, c := range cancels {
			if c.w.state == workerRunning {
				c.w.cancels = append(c.w.cancels, c.seq)
			}
		}
		p.cond.Broadcast()
		p.mu.Unlock()
	}
}

var errAbandoned = errors.New("iteration stopped early")
