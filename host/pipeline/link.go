package pipeline

import "sync"

// entry is one item's trip through the pipeline. Its value travels inside
// the executors; the entry remembers the rest: where the item came from and the
// lines the stages it went through printed.
type entry struct {
	origin int      // index among the input's items
	out    []string // lines printed so far, stage by stage
	// done: the item's trip is over. It failed (err), came out of the last
	// stage (value), or got no value to pass on; it only passes by the
	// stages that remain, to keep its place in the output.
	done  bool
	stage int   // the stage it finished in
	err   error // why it failed; nil if it did not
	// notRun: the stage's executor degraded before running it (err is
	// its backend.ErrNotRun): counted, not reported one by one.
	notRun bool
	value  []byte // the last stage's result
}

// receiver takes entries in the order of their items (in ordered runs):
// the next stage's link, or the writer at the end. push reports false when
// the run stopped.
type receiver interface {
	push(e entry) bool
}

// maxPassing bounds the done entries an ordered link holds behind an item
// still in its stage: a run of items failing upstream while one item is
// slow here waits for it rather than piling up. A var for tests.
var maxPassing = 1 << 14

// A link holds the entries of the items inside one stage (1 and up; stage
// 0's items are the input's, in order), so that each of the stage's results
// can be joined to its item's entry.
//
// Ordered, it is a FIFO in input order whose live entries match the stage's
// results one by one, interleaved with done entries of items that finished
// upstream. A done entry leaves as soon as nothing ahead of it is left in
// the stage; otherwise it waits for the item ahead to come out, so output
// and failure reports keep input order. Each push and take delivers
// downstream with the link's lock held, so deliveries leave in the order
// they arrived; locks are only ever taken downstream (stage k, then k+1,
// ..., then the writer), so they cannot deadlock, and a receiver that
// waits for room in its queue releases only its own lock.
//
// Unordered, it is a table from the stage's item index to the entry, and
// done entries go straight to the writer.
type link struct {
	mu      sync.Mutex
	ordered bool
	down    receiver
	stopped bool

	// Ordered.
	room    sync.Cond // a done entry left: room for those waiting in push
	waiting int       // pushes waiting on room
	q       []entry
	head    int // q[head:] are the entries held
	ndone   int // done entries in q[head:]
	taken   int // live entries taken: the index of the next result

	// Unordered.
	live map[int]entry
	fed  int // live entries pushed: the stage index of the next item
}

func newLink(ordered bool, down receiver) *link {
	l := &link{ordered: ordered, down: down}
	l.room.L = &l.mu
	if !ordered {
		l.live = make(map[int]entry)
	}
	return l
}

// push adds the entry of the next item fed to the stage (live) or of an
// item passing by (done). The caller feeds a live entry's item to the stage
// after push returns, before pushing anything else. It reports false when
// the run stopped.
func (l *link) push(e entry) bool {
	if !l.ordered {
		if e.done {
			return l.down.push(e)
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		l.live[l.fed] = e
		l.fed++
		return !l.stopped
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if e.done {
		for !l.stopped && l.head < len(l.q) && l.ndone >= maxPassing {
			l.waiting++
			l.room.Wait()
			l.waiting--
		}
		if l.stopped {
			return false
		}
		if l.head == len(l.q) {
			return l.down.push(e) // nothing ahead of it here
		}
		l.ndone++
	}
	if l.stopped {
		return false
	}
	l.q = append(l.q, e)
	return true
}

// take returns the entry of the stage's result i. The caller delivers what
// becomes of the item, then calls release; in ordered links, the lock is
// held in between. ok is false when the run stopped; then release must not
// be called.
func (l *link) take(i int) (e entry, ok bool) {
	l.mu.Lock()
	if !l.ordered {
		defer l.mu.Unlock()
		e, ok = l.live[i]
		if !ok && !l.stopped {
			panic("pipeline: a stage returned a result for an item it was not given")
		}
		delete(l.live, i)
		return e, ok && !l.stopped
	}
	if l.stopped {
		l.mu.Unlock()
		return entry{}, false
	}
	if !l.pass() {
		l.mu.Unlock()
		return entry{}, false
	}
	if l.head == len(l.q) || i != l.taken {
		panic("pipeline: a stage returned a result out of order or for an item it was not given")
	}
	e = l.q[l.head]
	l.q[l.head] = entry{}
	l.head++
	l.taken++
	return e, true
}

// release ends a take: in ordered links it sends on the done entries the
// item taken was holding back, and unlocks.
func (l *link) release() {
	if !l.ordered {
		return
	}
	l.pass()
	switch {
	case l.head == len(l.q):
		l.q, l.head = l.q[:0], 0
	case l.head >= 1024 && 2*l.head >= len(l.q):
		n := copy(l.q, l.q[l.head:])
		clear(l.q[n:])
		l.q, l.head = l.q[:n], 0
	}
	if l.waiting > 0 {
		l.room.Broadcast()
	}
	l.mu.Unlock()
}

// pass sends on the done entries at the head of the queue. Called with
// l.mu held.
func (l *link) pass() bool {
	for l.head < len(l.q) && l.q[l.head].done {
		e := l.q[l.head]
		l.q[l.head] = entry{}
		l.head++
		l.ndone--
		if !l.down.push(e) {
			return false
		}
	}
	return true
}

// stop makes every push and take from now on report false, and wakes the
// pushes that wait for room.
func (l *link) stop() {
	l.mu.Lock()
	l.stopped = true
	l.room.Broadcast()
	l.mu.Unlock()
}
