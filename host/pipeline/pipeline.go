package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"math"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pluginpool/pluginpool/host/backend"
	"github.com/pluginpool/pluginpool/host/config"
	"github.com/pluginpool/pluginpool/host/jsonl"
)

// Spec describes one run of a pipeline. Only Stages and an input are
// required; the zero value of every other field means its default. Run
// does not modify the Spec or anything it points to.
type Spec struct {
	// Name names the pipeline in errors. Optional.
	Name string
	// Stages start the executors to chain, in order: the input's items go
	// to the first stage, each stage's results to the next, and the last
	// stage's results to Output. Run calls each once, all at once, and
	// stops what they start at the end: pool.Starter(cfg) runs a stage on
	// local plugin processes, cluster.Starter(cfg) on a cluster's workers;
	// Run does not know which. A stage is named in reports by its plugin
	// (its executor's Stats().Plugin). Required, at least one.
	Stages []backend.StartFunc

	// Input is read one item per line; blank lines are skipped but counted
	// in line numbers. Run reads it on a goroutine of its own, only as fast
	// as the stages take items. Exactly one of Input, InputPath and Args
	// must be set.
	Input io.Reader
	// InputPath is a file to read the items from instead; Run opens and
	// closes it.
	InputPath string
	// Args are the items themselves, instead of an input: each is taken
	// as is when it is valid JSON, else as a JSON string ("x" for x), as
	// the CLI takes its arguments. Failures name them "item 2 (x)" rather
	// than by line.
	Args []string
	// InputName names the input in errors, e.g. "stdin". Default
	// InputPath, else "the input".
	InputName string
	// Format says how a line becomes an item: config.FormatJSONL (the
	// default) takes each line as a JSON value, as is; config.FormatLines
	// takes it as a plain string and encodes it as a JSON string.
	Format config.Format
	// AbortInput, if set, is called once if Run stops reading before the
	// input is exhausted (ctx cancelled, or writing the output failed). It must make
	// a Read of Input that is blocked return, from another goroutine:
	// before it returns, Run waits for the Read in progress. Input that
	// cannot block (a regular file, a buffer) needs none; a pipe or a
	// terminal does.
	AbortInput func()

	// Output receives the results, written as jsonl.Writer writes them:
	// for each item that came through, the lines every stage printed for
	// it, stage by stage, then the last stage's value, if it returned one.
	// At most one of Output and OutputPath may be set; with neither, the
	// results are discarded (for stages run for their side effects).
	Output io.Writer
	// OutputPath is a file to write the results to, atomically: Run writes
	// a temporary file in the same directory (".NAME.tmp-*") and renames it
	// over OutputPath, after an fsync, only when the run completed, even if
	// some items failed: the file then holds every other item's result. A
	// run that stops early (cancelled, a write or read error, a stage that
	// could not start) removes the temporary file and leaves OutputPath as
	// it was. If OutputPath exists and is not a regular file (/dev/null, a
	// FIFO), Run writes to it directly.
	OutputPath string

	// Unordered writes each result as soon as it is ready, rather than in
	// input order. Default false: input order. Both keep every stage busy;
	// ordered output holds back results that finish before an earlier item
	// (bounded by each executor's window).
	Unordered bool

	// OnFailure, if set, is called for each item that failed, with where
	// and why. It does not reach the stages after the one it failed in,
	// and its output lines are not written. Calls are never concurrent and,
	// in ordered runs, come in input order; a call blocks the pipeline's
	// output, so keep it short.
	OnFailure func(*Failure)
	// Progress, if set, is called each time an item is resolved (written
	// or failed) with the counts so far. Calls are never concurrent. It is
	// on the hot path: store the numbers (e.g. in atomics) and display them
	// elsewhere.
	Progress func(done, failed int)
	// Started, if set, is called once every stage's executor has started,
	// before any item is read, with the executors in stage order, e.g. to
	// watch their Stats while the run goes on. It must not close them.
	Started func(executors []backend.Executor)
}

// Summary counts what a run did: Succeeded + Failed + NotRun = Items.
type Summary struct {
	// Items is the number of items of the input: those read and, when the
	// run stopped reading because a stage degraded, those counted after.
	Items int
	// Succeeded counts the items that came through every stage, or that a
	// stage returned no value for (a sink such as printer, or a filter):
	// their trip ends there, and their printed lines are written.
	Succeeded int
	// Failed counts the items that failed in some stage.
	Failed int
	// NotRun counts the items that did not go through because a stage's
	// executor degraded (see DegradedError): that stage did not run them
	// (earlier stages may have), or the run stopped reading before them.
	NotRun int
	// Stages holds each stage executor's statistics at the end of the
	// run, taken before it stopped (so a local pool's workers show their
	// processes); nil if the stages did not start.
	Stages []backend.Stats
}

// Run runs the pipeline spec describes and blocks until it is done. Every
// stage runs at once, on its own executor, with bounded buffers between stages:
// the first stage reads items only as fast as the last stage's results are
// written, so an input of any length runs in constant memory.
//
// An item that fails in a stage is reported to OnFailure with its input
// line (or argument) and the stage, and goes no further; the others go
// on. An item for
// which a stage returns no value ends its trip there: its printed lines
// are written, and it counts as succeeded.
//
// Run returns nil when every item succeeded, and an error matching
// ErrFailed (a *FailedError) when the run completed but some items failed;
// in both cases the output is complete. When a stage's executor degrades,
// the run stops reading, lets the items already in it finish (the
// degraded stage resolves its own as not run), counts the rest of the
// input, and returns a *DegradedError (matching backend.ErrDegraded and
// backend.ErrNotRun); an output file is then left as it was. Any other
// error means the run stopped early: a stage could not start (a
// *StageError naming it, matching backend.ErrStart when the plugin could
// not be started), the input could not be read, the output could not be
// written (an error wrapping the writer's, e.g. syscall.EPIPE), or ctx
// was cancelled (ctx's error). Cancelling ctx terminates the stages'
// workers at once. The Summary counts what was done either way.
func Run(ctx context.Context, spec Spec) (Summary, error) {
	if err := spec.check(); err != nil {
		return Summary{}, err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	in, inName := spec.Input, spec.InputName
	if spec.InputPath != "" {
		f, err := os.Open(spec.InputPath)
		if err != nil {
			return Summary{}, fmt.Errorf("input: %w", err)
		}
		defer f.Close()
		in = f
		if inName == "" {
			inName = spec.InputPath
		}
	}
	if inName == "" {
		inName = "the input"
	}
	out := spec.Output
	if spec.OutputPath != "" {
		f, err := createOutput(spec.OutputPath)
		if err != nil {
			return Summary{}, err
		}
		// Committed below when the run completes; on every other way out
		// this removes the temporary file.
		defer f.discard()
		out = f
	}
	if out == nil {
		out = io.Discard
	}

	execs, err := startAll(ctx, spec.Stages)
	if err != nil {
		if ctx.Err() != nil {
			return Summary{}, ctx.Err()
		}
		return Summary{}, err
	}
	if spec.AbortInput != nil {
		stop := context.AfterFunc(ctx, spec.AbortInput)
		defer stop()
	}
	if spec.Started != nil {
		spec.Started(slicesClone(execs))
	}

	r := newRun(ctx, cancel, spec, execs, in, out)
	defer r.stopIdle()
	// Unblock pushes waiting for room when the run stops early. Links are
	// stopped downstream first: a push waiting on link k+1 holds link k.
	stopLinks := context.AfterFunc(ctx, func() {
		for s := len(r.links) - 1; s >= 1; s-- {
			r.links[s].stop()
		}
	})
	defer stopLinks()

	r.out.w.FlushEvery(outputFlush)
	last := len(execs) - 1
	for i, rs := range r.runs(last) {
		if !r.settleRun(last, i, rs) {
			break
		}
	}

	werr := r.out.flush()
	sum := Summary{Items: r.read}
	sum.Succeeded, sum.Failed, sum.NotRun, _ = r.out.counts()
	if werr != nil || ctx.Err() != nil {
		for _, p := range execs {
			p.Terminate()
		}
		sum.Stages = stats(execs)
		if werr != nil {
			return sum, fmt.Errorf("writing output: %w", werr)
		}
		return sum, ctx.Err() // only ctx's parent cancels it without werr
	}

	sum.Stages = stats(execs) // while the workers are there to show
	var closeErrs []error
	for i, p := range execs {
		if err := p.Close(); err != nil {
			closeErrs = append(closeErrs, err)
			if errors.Is(err, backend.ErrDegraded) {
				// Degraded while no item was in it (the input was idle):
				// the run stopped feeding it all the same.
				r.noteDegraded(i, err)
			}
		}
	}
	if deg := r.degradation(); deg != nil {
		// The items never read are not run too: count them.
		sum.Items = r.src.Rest()
		r.stopIdle()
		sum.NotRun = sum.Items - sum.Succeeded - sum.Failed
		if sum.NotRun > 0 {
			// Not committed: the output file is left as it was.
			deg.InputErr = r.src.Err() // let go of (idle), or unreadable
			deg.Partial = deg.InputErr != nil
			deg.NotRun, deg.Items = sum.NotRun, sum.Items
			deg.at = r.src.at(min(deg.first, r.read))
			deg.Line = deg.at.line
			return sum, deg
		}
	}
	if err := r.src.Err(); err != nil {
		return sum, fmt.Errorf("reading %s: %w", inName, err)
	}
	if f, ok := out.(*outputFile); ok {
		if err := f.commit(); err != nil {
			return sum, err
		}
	}
	if sum.Failed > 0 {
		_, _, _, first := r.out.counts()
		fe := &FailedError{Failed: sum.Failed, Items: sum.Items, First: first}
		return sum, errors.Join(append([]error{fe}, closeErrs...)...)
	}
	return sum, errors.Join(closeErrs...)
}

// check reports every problem with the spec, each wrapped in
// ErrInvalidSpec.
func (s *Spec) check() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s", ErrInvalidSpec, fmt.Sprintf(format, args...)))
	}
	if len(s.Stages) == 0 {
		bad("no stages: a pipeline needs at least one")
	}
	inputs := 0
	for _, set := range []bool{s.Input != nil, s.InputPath != "", s.Args != nil} {
		if set {
			inputs++
		}
	}
	switch inputs {
	case 0:
		bad("no input: set Input, InputPath or Args")
	case 2, 3:
		bad("more than one of Input, InputPath and Args is set: set one")
	}
	if s.Output != nil && s.OutputPath != "" {
		bad("both Output and OutputPath are set: set one")
	}
	switch s.Format {
	case "", config.FormatJSONL, config.FormatLines:
	default:
		bad("Format %q: want %q or %q", s.Format, config.FormatJSONL, config.FormatLines)
	}
	return errors.Join(errs...)
}

// startAll starts every stage's executor at once. If one cannot start,
// the others are stopped and the error, a *StageError, names the stage.
func startAll(ctx context.Context, stages []backend.StartFunc) ([]backend.Executor, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	execs := make([]backend.Executor, len(stages))
	errs := make([]error, len(stages))
	var wg sync.WaitGroup
	for i, start := range stages {
		wg.Go(func() {
			execs[i], errs[i] = start(ctx)
			if errs[i] != nil {
				cancel() // no use waiting for the others
			}
		})
	}
	wg.Wait()
	var first error
	for i, err := range errs {
		// A stage that failed first, not one cancelled because of it.
		if err != nil && (first == nil || errors.Is(first, context.Canceled) && !errors.Is(err, context.Canceled)) {
			first = &StageError{Stage: i, Err: err}
		}
	}
	if first != nil {
		for _, p := range execs {
			if p != nil {
				p.Terminate()
			}
		}
		return nil, first
	}
	return execs, nil
}

func stats(execs []backend.Executor) []backend.Stats {
	s := make([]backend.Stats, len(execs))
	for i, p := range execs {
		s[i] = p.Stats()
	}
	return s
}

func slicesClone[T any](s []T) []T { return append([]T(nil), s...) }

// run is one Run in progress.
type run struct {
	ctx       context.Context
	execs     []backend.Executor
	unordered bool
	src       source // stage 0's items
	// links[s] holds the entries of the items in stage s, for s >= 1;
	// stage 0's items are the input's, in order, and need none.
	links []*link
	out   *writer
	// read counts stage 0's results: the items read. Only the goroutine
	// consuming stage 0 touches it until the run is over.
	read int
	// read changes with every item on one goroutine while stage 0's
	// feeder loads halted with every item on another: on one cache line,
	// that load missed the cache every time (~3% of the CLI's CPU in W1).
	_ [64]byte

	// A stage degraded: stop feeding the input to stage 0 (see items).
	halted     atomic.Bool
	abortInput func() // Spec.AbortInput
	mu         sync.Mutex
	degraded   *DegradedError // the first stage that degraded; guarded by mu
	idle       func()         // stops the input's idle bound; guarded by mu
}

// noteNotRun records that stage s did not run item origin because its
// executor degraded.
func (r *run) noteNotRun(s, origin int, err error) {
	r.noteDegraded(s, err)
	r.mu.Lock()
	r.degraded.first = min(r.degraded.first, origin)
	r.mu.Unlock()
}

// noteDegraded records that stage s's executor degraded with err. The first
// time, the run stops reading its input, and lets go of an input that
// stays open with nothing to read (tail -f): the items it still holds are
// counted as not run.
func (r *run) noteDegraded(s int, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.degraded != nil {
		return
	}
	if ne, ok := errors.AsType[*backend.NotRunError](err); ok {
		err = ne.Cause // why, rather than an item's "not run"
	}
	r.degraded = &DegradedError{Stage: s, Plugin: r.out.names[s], Err: err, first: math.MaxInt}
	r.halted.Store(true)
	if r.abortInput != nil {
		r.idle = r.src.AbortWhenIdle(r.abortInput, inputIdle)
	}
}

// degradation returns the run's *DegradedError, or nil if no stage
// degraded. Called once the stages are done.
func (r *run) degradation() *DegradedError {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.degraded
}

// stopIdle stops the input's idle bound, if noteNotRun armed one.
func (r *run) stopIdle() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.idle != nil {
		r.idle()
		r.idle = nil
	}
}

// inputIdle is how long counting a degraded run's unread input waits for
// more of it.
const inputIdle = time.Second

func newRun(ctx context.Context, cancel context.CancelCauseFunc, spec Spec, execs []backend.Executor, in io.Reader, out io.Writer) *run {
	names := make([]string, len(execs))
	for i, p := range execs {
		names[i] = p.Stats().Plugin
	}
	var src source
	if spec.Args != nil {
		src = newArgs(spec.Args)
	} else {
		// The first stage fails a longer item alone: hold no more of one.
		src = lines{jsonl.NewReader(in, spec.Format == config.FormatLines, execs[0].MaxItemBytes())}
	}
	r := &run{
		ctx:        ctx,
		execs:      execs,
		abortInput: spec.AbortInput,
		unordered:  spec.Unordered,
		src:        src,
		links:      make([]*link, len(execs)),
	}
	r.out = &writer{
		ctx: ctx, cancel: cancel, at: src.at, names: names,
		onFailure: spec.OnFailure, progress: spec.Progress, w: jsonl.NewWriter(out),
	}
	var down receiver = r.out
	for s := len(execs) - 1; s >= 1; s-- {
		r.links[s] = newLink(!spec.Unordered, down)
		down = r.links[s]
	}
	return r
}

// results runs stage s over its items.
func (r *run) results(s int) iter.Seq2[int, backend.Result] {
	if r.unordered {
		return r.execs[s].ImapUnordered(r.ctx, r.items(s))
	}
	return r.execs[s].Imap(r.ctx, r.items(s))
}

// runs runs stage s over its items, yielding its results in runs (see
// backend.Batcher): whole runs from an executor that has them, in an
// ordered run, else one result at a time.
func (r *run) runs(s int) iter.Seq2[int, []backend.Result] {
	if b, ok := r.execs[s].(backend.Batcher); ok && !r.unordered {
		if s == 0 {
			return b.ImapRuns(r.ctx, r.inputRuns())
		}
		return b.ImapBatches(r.ctx, r.items(s))
	}
	return func(yield func(int, []backend.Result) bool) {
		one := make([]backend.Result, 1)
		for i, res := range r.results(s) {
			one[0] = res
			if !yield(i, one) {
				return
			}
		}
	}
}

// settleRun settles the last stage's results rs, of items i0.. (see
// settle). It reports false when the run stopped. A one-stage run's
// results go to the writer under one lock per run rather than per item:
// with the lock per item, and ctx checked twice, this was ~15% of the
// CLI's CPU mapping 1M trivial items.
func (r *run) settleRun(s, i0 int, rs []backend.Result) bool {
	if s != 0 {
		for k := range rs {
			if _, ok := r.settle(s, i0+k, &rs[k]); !ok {
				return false
			}
		}
		return true
	}
	if r.ctx.Err() != nil {
		return false
	}
	w := r.out
	w.mu.Lock()
	defer w.mu.Unlock()
	for k := 0; k < len(rs); k++ {
		if rs[k].Err == nil {
			// Items that came through: written together.
			m := k + 1
			for m < len(rs) && rs[m].Err == nil {
				m++
			}
			r.read += m - k
			if !w.writeAll(rs[k:m]) {
				return false
			}
			k = m - 1
			continue
		}
		res := &rs[k]
		r.read++
		e := entry{origin: i0 + k, done: true, out: res.Output}
		switch {
		case r.ctx.Err() != nil:
			// Results failed with ctx's error are not the items' fault.
			return false
		case errors.Is(res.Err, backend.ErrNotRun):
			r.noteNotRun(s, e.origin, res.Err)
			e.err, e.notRun = res.Err, true
		default:
			e.err = r.itemError(s, e.origin, res.Err)
		}
		if !w.pushLocked(&e) {
			return false
		}
	}
	return true
}

// inputRuns is stage 0's items in runs, as the input is read: each goes
// on as it comes. (A later stage takes its items one by one: holding a run
// of them back while settling the next could wait forever on a link with
// no room, which only taking them frees.)
func (r *run) inputRuns() iter.Seq[[][]byte] {
	return func(yield func([][]byte) bool) {
		for run := range r.src.Runs() {
			// Read but not fed after a stage degraded: Rest counts them
			// with the items after them (Reader.Count).
			if r.halted.Load() || !yield(run) {
				return
			}
		}
	}
}

// items yields stage s's items: the input's for stage 0, else stage s-1's
// results that go on. It runs on stage s's feeder goroutine, so stage s-1's
// results are taken as fast as stage s takes items, and no faster.
func (r *run) items(s int) iter.Seq[[]byte] {
	if s == 0 {
		return func(yield func([]byte) bool) {
			for it := range r.src.Items() {
				// Read but not fed after a stage degraded: Rest counts
				// it with the items after it (Reader.Count).
				if r.halted.Load() || !yield(it) {
					return
				}
			}
		}
	}
	return func(yield func([]byte) bool) {
		for i, rs := range r.runs(s - 1) {
			for k := range rs {
				v, ok := r.settle(s-1, i+k, &rs[k])
				if !ok || v != nil && !yield(v) {
					return
				}
			}
		}
	}
}

// settle joins stage s's result i to its item's entry and sends the item
// on: into stage s+1 (returning the value to feed it) or, when its trip is
// over, toward the writer. ok is false when the run stopped. res is only
// read (by reference: a Result is eight words, copied per item otherwise).
func (r *run) settle(s, i int, res *backend.Result) (next []byte, ok bool) {
	if r.ctx.Err() != nil {
		// Results failed with ctx's error are not the items' fault.
		return nil, false
	}
	var e entry
	var in *link
	if s == 0 {
		r.read++
		e = entry{origin: i}
	} else {
		in = r.links[s]
		if e, ok = in.take(i); !ok {
			return nil, false
		}
	}
	if len(res.Output) > 0 {
		e.out = append(e.out[:len(e.out):len(e.out)], res.Output...)
	}
	last := s == len(r.execs)-1
	switch {
	case res.Err != nil && errors.Is(res.Err, backend.ErrNotRun):
		r.noteNotRun(s, e.origin, res.Err)
		e.done, e.stage, e.err, e.notRun = true, s, res.Err, true
	case res.Err != nil:
		e.done, e.stage, e.err = true, s, r.itemError(s, e.origin, res.Err)
	case last:
		e.done, e.stage, e.value = true, s, res.Value
	case res.Value == nil:
		e.done, e.stage = true, s // no value to pass on: the trip ends here
	default:
		next = res.Value
	}
	// Concrete calls, and the entry by reference to the writer: through
	// the receiver interface, with the entry copied, this line was ~15%
	// of a one-stage run's CPU in its profile.
	if last {
		ok = r.out.pushRef(&e)
	} else {
		ok = r.links[s+1].push(e)
	}
	if in != nil {
		in.release()
	}
	return next, ok
}

// itemError adds what only the pipeline knows to an item's error: for an
// input line over the size limit, its real length (the reader cut it).
func (r *run) itemError(s, origin int, err error) error {
	if s != 0 {
		return err
	}
	var tl *backend.TooLargeError
	if n, cut := r.src.Oversize(origin); cut && errors.As(err, &tl) {
		return &backend.TooLargeError{Size: n, Limit: tl.Limit}
	}
	return err
}

// outputFlush is how long a result may sit in the output buffer: a slow or
// stalled pipeline shows its results within it.
const outputFlush = 100 * time.Millisecond
