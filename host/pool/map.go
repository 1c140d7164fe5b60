package pool

import (
	"context"
	"iter"
)

// Map runs every item and returns their results in input order, one per
// item. It blocks until all are done or ctx is cancelled; cancelling fails
// the unfinished items with ctx's error and cancels their tasks. The items
// must not be modified until Map returns.
//
// The error is nil when every item succeeded; otherwise it counts the
// failures and wraps the first one, and results says which items failed and
// why. Like Python's Pool.map, but a failed item never hides the others.
func (p *Pool) Map(ctx context.Context, items [][]byte) ([]Result, error) {
	results := make([]Result, len(items))
	if len(items) == 0 {
		return results, nil
	}
	j := newJob(ctx)
	j.src, j.results, j.left = items, results, len(items)
	d, err := p.addJob(j)
	if err != nil {
		for i := range results {
			results[i].Err = err
		}
		return results, err
	}
	defer p.removeJob(j)
	if d.w != nil {
		p.sendDirect(d)
		if d.read {
			p.readDirect(ctx, d, j)
		}
	}
	for {
		j.mu.Lock()
		left := j.left
		j.mu.Unlock()
		if left == 0 {
			break
		}
		select {
		case <-j.wake:
		case <-ctx.Done():
			p.stopJob(j, ctx.Err())
		}
	}
	return results, FirstError(results)
}

// Apply runs one item and returns its result; err is the result's Err.
// Like Python's Pool.apply.
func (p *Pool) Apply(ctx context.Context, item []byte) (Result, error) {
	rs, _ := p.Map(ctx, [][]byte{item})
	return rs[0], rs[0].Err
}

// Imap runs items as they come and yields each result with its input
// index, in input order. It is lazy: it reads items only as fast as results
// are taken, and holds a bounded number of batches in memory, so an input of
// any length runs in constant memory. Every item read yields exactly one
// result; a failed item yields its error and iteration goes on.
//
// items is read on a goroutine of its own, concurrently with the loop body.
// Imap copies each item before asking for the next, so items may reuse one
// buffer for every element. If the loop stops early,
// the unfinished tasks are cancelled and Imap returns once items has yielded
// its next element or returned. Cancelling ctx fails the unfinished items
// with ctx's error.
func (p *Pool) Imap(ctx context.Context, items iter.Seq[[]byte]) iter.Seq2[int, Result] {
	return p.imap(ctx, items, true)
}

// ImapUnordered is Imap yielding results as they complete rather than in
// input order; the index says which item each belongs to.
func (p *Pool) ImapUnordered(ctx context.Context, items iter.Seq[[]byte]) iter.Seq2[int, Result] {
	return p.imap(ctx, items, false)
}

// ImapBatches is Imap yielding runs of answered items instead of single
// results: each step gives the input index of a run of items and their
// results, consecutive and in input order, so that every item read is in
// exactly one run. Runs are up to 256 items long (shorter at the end of
// one of the pool's batches, or one item where the pool resolved one
// alone).
// It is for callers that handle results in bulk: a loop over a whole run
// costs less than an iterator step per item (on 1M trivial items it cut
// a cluster worker's CPU, see host/cluster/worker.go).
//
// The results slice is valid only until the loop body returns: its array
// is reused for a later run. The Results themselves (their Values and
// Output) may be kept. Input, laziness, memory, early stop and
// cancellation are as for Imap.
func (p *Pool) ImapBatches(ctx context.Context, items iter.Seq[[]byte]) iter.Seq2[int, []Result] {
	return func(yield func(int, []Result) bool) {
		p.imapBatches(ctx, source{items: items}, true, sink{results: yield})
	}
}

// ImapRuns is ImapBatches taking its items in runs too (as
// backend.Batcher says): each element of runs is a run of items, which
// the pool copies into its batches a run at a time, before asking for the
// next run. A run, and its items, may be reused for the next.
func (p *Pool) ImapRuns(ctx context.Context, runs iter.Seq[[][]byte]) iter.Seq2[int, []Result] {
	return func(yield func(int, []Result) bool) {
		p.imapBatches(ctx, source{runs: runs}, true, sink{results: yield})
	}
}

func (p *Pool) imap(ctx context.Context, items iter.Seq[[]byte], ordered bool) iter.Seq2[int, Result] {
	return func(yield func(int, Result) bool) {
		p.imapBatches(ctx, source{items: items}, ordered, sink{results: func(index int, rs []Result) bool {
			for i := range rs {
				if !yield(index+i, rs[i]) {
					return false
				}
			}
			return true
		}})
	}
}

// imapBatches is Imap handing over runs of answered items to s (see
// sink): the index of a run of items and their results, which it must not
// keep after it returns (the array is reused). ImapBatches and the typed
// caller take them this way: one call per run rather than an iterator's
// per item.
func (p *Pool) imapBatches(ctx context.Context, src source, ordered bool, s sink) {
	yield := s.results
	j := newJob(ctx)
	j.ordered = ordered
	if ordered {
		j.complete = make(map[int]*batch)
	}
	j.maxWindow = 2*p.cfg.Workers*p.cfg.InFlight + 2
	if _, err := p.addJob(j); err != nil { // an Imap job: no direct send
		i, one := 0, []Result{{Err: err}}
		for range src.all() {
			one[0] = Result{Err: err}
			if !yield(i, one) {
				return
			}
			i++
		}
		return
	}
	fed := make(chan struct{})
	go func() {
		defer close(fed)
		p.feed(j, src)
	}()
	defer func() {
		p.stopJob(j, errAbandoned)
		<-fed
		p.removeJob(j)
	}()
	var run []Result // yieldRuns's, reused
	for seq := 0; ; seq++ {
		b := p.nextComplete(j, seq)
		if b == nil {
			// A job stopped while its feeder held an item: the feeder
			// gave it a result of its own (strand), the last one.
			<-fed
			p.mu.Lock()
			b, j.stranded = j.stranded, nil
			p.mu.Unlock()
			if b != nil {
				yieldChunks(b.index, b.results, yield)
			}
			return
		}
		if !b.yieldRuns(&run, s) {
			return
		}
		p.mu.Lock()
		j.window--
		j.recycle(b)
		p.cond.Broadcast()
		p.mu.Unlock()
	}
}

// nextComplete waits for the job's next complete root batch (the one cut
// seq-th for ordered jobs, any for unordered), or returns nil when the job
// has no more.
func (p *Pool) nextComplete(j *job, seq int) *batch {
	for {
		j.mu.Lock()
		var b *batch
		if j.ordered {
			if b = j.complete[seq]; b != nil {
				delete(j.complete, seq)
			}
		} else if len(j.queue) > 0 {
			b = j.queue[0]
			j.queue[0] = nil
			j.queue = j.queue[1:]
		}
		j.mu.Unlock()
		if b != nil {
			return b
		}
		p.mu.Lock()
		finished := j.fed && j.open == nil && len(j.ready) == 0 && seq == j.cut
		p.mu.Unlock()
		if finished {
			return nil
		}
		select {
		case <-j.wake:
		case <-j.ctx.Done():
			p.stopJob(j, j.ctx.Err())
		}
	}
}
