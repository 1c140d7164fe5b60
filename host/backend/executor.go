package backend

import (
	"context"
	"iter"
)

// Executor runs one plugin's items, wherever its back-end runs them. Every
// item ends as exactly one Result: a value, or an error matching one of
// this package's sentinels. Its methods are safe for concurrent use;
// concurrent calls share the executor's workers.
type Executor interface {
	// Map runs every item and returns one Result per item, in input
	// order. It blocks until all are done or ctx is cancelled, which fails
	// the unfinished items with ctx's error. The error is nil when every
	// item succeeded, else it counts the failures and wraps the first
	// (see FirstError).
	Map(ctx context.Context, items [][]byte) ([]Result, error)
	// Apply runs one item. The error is the Result's.
	Apply(ctx context.Context, item []byte) (Result, error)
	// Imap runs items as they come and yields each item's index and
	// Result, in input order. It reads items only as fast as results are
	// taken and holds a bounded number of them, so an input of any length
	// runs in constant memory. Every item read yields exactly one Result.
	Imap(ctx context.Context, items iter.Seq[[]byte]) iter.Seq2[int, Result]
	// ImapUnordered is Imap yielding results as they complete.
	ImapUnordered(ctx context.Context, items iter.Seq[[]byte]) iter.Seq2[int, Result]
	// MaxItemBytes is the largest item the executor takes; a larger one
	// fails alone with ErrTooLarge. A caller reading items from a stream
	// holds at most this much of one.
	MaxItemBytes() int
	// Stats returns a snapshot of the executor's counters since it
	// started.
	Stats() Stats
	// Close stops taking calls, waits for those in progress, and releases
	// the workers. It returns nil, or an error matching ErrDegraded when
	// the executor stopped serving because of its workers. Safe to call
	// more than once and after Terminate.
	Close() error
	// Terminate stops at once, failing unfinished items with ErrClosed.
	// Safe to call more than once and after Close.
	Terminate() error
}

// StartFunc starts an Executor: pool.Starter(cfg) for local processes,
// cluster.Starter(cfg) for a cluster's workers. Whoever calls it owns
// what it returns and must Close or Terminate it. Cancelling ctx aborts
// the start; it does not affect the executor once started. On error it
// returns a nil Executor and an error matching ErrStart when the plugin
// could not be started (or reached).
type StartFunc func(ctx context.Context) (Executor, error)

// Batcher is implemented by an Executor that can hand over Imap's results
// in runs: ImapBatches is Imap yielding the index of a run of items and
// their results, consecutive and in input order, every item read in
// exactly one run. The results slice is valid only until the loop body
// returns; the Results themselves may be kept. A caller that handles
// results in bulk (the pipeline's writer) checks for it: a loop over a run
// costs less than an iterator step per item.
//
// ImapRuns is ImapBatches taking its items in runs as well: each element
// of runs is a run of items, valid, with its items, only until the next
// is asked for (the executor copies them first). Items(runs) is the same
// input item by item. An input read in bulk (the pipeline's lines) saves
// the iterator step per item on that side too.
type Batcher interface {
	ImapBatches(ctx context.Context, items iter.Seq[[]byte]) iter.Seq2[int, []Result]
	ImapRuns(ctx context.Context, runs iter.Seq[[][]byte]) iter.Seq2[int, []Result]
}

// Items yields the items of runs one by one: for an executor that takes
// items one at a time (see Batcher).
func Items(runs iter.Seq[[][]byte]) iter.Seq[[]byte] {
	return func(yield func([]byte) bool) {
		for run := range runs {
			for _, it := range run {
				if !yield(it) {
					return
				}
			}
		}
	}
}

// Bind makes the StartFunc that starts a back-end's executor for cfg with
// its typed start function (pool.Start, cluster.Start). On error the
// StartFunc returns a nil Executor, never a nil *T in a non-nil interface.
func Bind[C any, E Executor](start func(context.Context, C) (E, error), cfg C) StartFunc {
	return func(ctx context.Context) (Executor, error) {
		e, err := start(ctx, cfg)
		if err != nil {
			return nil, err
		}
		return e, nil
	}
}
