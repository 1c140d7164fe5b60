package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"os"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pluginpool/pluginpool/host/backend"
)

// Executor runs one plugin's items on the cluster's workers. It is a
// backend.Executor with a local pool's semantics: one Result per item, in
// input order for Map and Imap, errors matching backend's sentinels. Each
// call is one job. Its methods are safe for concurrent use.
type Executor struct {
	cfg  Config
	log  hclog.Logger
	l    *link
	host string

	mu      sync.Mutex
	cond    *sync.Cond // Broadcast when active or live change
	closing bool
	err     error // why calls are refused: backend.ErrClosed
	active  map[*job]struct{}
	size    int                    // adaptive batch size, in items
	live    map[string]*seenWorker // the workers bucket, by worker id
	refused map[string]string      // worker id -> the refusal logged for it
	stats   counters

	stopWatch context.CancelFunc
	wg        sync.WaitGroup
}

var (
	_ backend.Executor = (*Executor)(nil)
	_ backend.Batcher  = (*Executor)(nil)
)

// Starter returns the backend.StartFunc that starts an executor for cfg:
// a cluster's workers as the back-end of a pipeline stage or a CLI
// command.
func Starter(cfg Config) backend.StartFunc { return backend.Bind(Start, cfg) }

// MaxItemBytes returns the largest item the executor takes
// (Config.MaxItemBytes, default applied); a larger one fails alone with
// pool.ErrTooLarge, as does one that does not fit in a NATS message.
func (e *Executor) MaxItemBytes() int { return e.cfg.MaxItemBytes }

// seenWorker is a worker record and when this process last saw it.
type seenWorker struct {
	rec  WorkerInfo
	seen time.Time
}

// Start connects to the cluster, creating its stream and buckets if
// needed, and waits up to StartTimeout for a live worker that serves the
// plugin as pinned. It fails with a *NoWorkersError (matching ErrNoWorkers
// and backend.ErrStart) naming the workers refused and why, or with a
// *ConnectError. Refused workers are logged as warnings, at start and when
// they join later. Cancelling ctx aborts the start; it does not affect the
// executor once Start has returned.
func Start(ctx context.Context, cfg Config) (*Executor, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	log := cfg.Logger.Named(cfg.Plugin)
	l, err := dial(ctx, cfg.NATS, "pluginpool host: "+cfg.Plugin, log)
	if err != nil {
		return nil, err
	}
	e := &Executor{
		cfg:     cfg,
		log:     log,
		l:       l,
		host:    hostname(),
		active:  make(map[*job]struct{}),
		size:    1,
		live:    make(map[string]*seenWorker),
		refused: make(map[string]string),
	}
	e.cond = sync.NewCond(&e.mu)
	e.stats.init()
	watchCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	e.stopWatch = stop
	w, err := l.workers.WatchAll(watchCtx)
	if err != nil {
		stop()
		l.close()
		return nil, fmt.Errorf("%w: watching %s: %v", ErrConnect, workersBucket, err)
	}
	e.wg.Go(func() { e.watchWorkers(watchCtx, w) })
	if err := e.waitForWorker(ctx); err != nil {
		e.Terminate()
		return nil, err
	}
	e.mu.Lock()
	e.size = e.firstSize()
	e.mu.Unlock()
	return e, nil
}

// firstSize is the batch size to start from: what the serving workers'
// recent per-item time suggests, else 1 (then doubling). A trip through
// NATS costs milliseconds; growing from 1 item took ~100 ms of a 1M-item
// job. Called with e.mu held.
func (e *Executor) firstSize() int {
	if e.cfg.ChunkSize > 0 {
		return e.cfg.ChunkSize
	}
	pins := e.pins()
	var slowest int64
	for _, sw := range e.live {
		if pr := sw.rec.Plugin(e.cfg.Plugin); pr != nil && pins.refusal(&sw.rec) == "" {
			if pr.ItemNs <= 0 {
				return 1 // a worker that has not run it yet: learn
			}
			slowest = max(slowest, pr.ItemNs)
		}
	}
	if slowest == 0 {
		return 1
	}
	return max(1, min(int(int64(targetBatchTime)/slowest), maxBatchItems))
}

// watchWorkers keeps e.live up to date until ctx is done.
func (e *Executor) watchWorkers(ctx context.Context, w jetstream.KeyWatcher) {
	defer w.Stop()
	tick := time.NewTicker(workerBeat)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			e.mu.Lock()
			e.cond.Broadcast() // lets waiters notice workers aging out
			e.mu.Unlock()
		case ent, ok := <-w.Updates():
			if !ok {
				return
			}
			if ent == nil {
				continue // the end of the initial values
			}
			e.mu.Lock()
			if ent.Operation() == jetstream.KeyValuePut {
				var rec WorkerInfo
				if err := json.Unmarshal(ent.Value(), &rec); err == nil {
					e.live[ent.Key()] = &seenWorker{rec: rec, seen: time.Now()}
					e.noteRefusal(&rec)
				}
			} else {
				delete(e.live, ent.Key())
			}
			e.cond.Broadcast()
			e.mu.Unlock()
		}
	}
}

// pins is a job record with this executor's pins, for checking workers.
func (e *Executor) pins() *jobRecord {
	return &jobRecord{Plugin: e.cfg.Plugin, SHA256: e.cfg.SHA256, Version: e.cfg.Version}
}

// noteRefusal logs a worker that runs the plugin but not as pinned, once
// per worker and reason. Called with e.mu held.
func (e *Executor) noteRefusal(rec *WorkerInfo) {
	why := e.pins().refusal(rec)
	if why == "" || e.refused[rec.ID] == why {
		return
	}
	e.refused[rec.ID] = why
	e.log.Warn("worker refused: it does not run the plugin as pinned", "worker", rec.ID, "host", rec.Host, "pid", rec.Pid, "reason", why)
}

// serving returns the live workers that serve the plugin as pinned and
// their total capacity, and the refusals among the others. Called with
// e.mu held.
func (e *Executor) serving() (n, capacity int, refused []Refusal) {
	pins := e.pins()
	for id, sw := range e.live {
		if time.Since(sw.seen) > workerTTL {
			delete(e.live, id)
			continue
		}
		pr := sw.rec.Plugin(e.cfg.Plugin)
		if pr == nil || sw.rec.Draining {
			continue
		}
		if why := pins.refusal(&sw.rec); why != "" {
			refused = append(refused, Refusal{Worker: id, Host: sw.rec.Host, Pid: sw.rec.Pid, Reason: why})
			continue
		}
		n++
		capacity += pr.Capacity
	}
	sort.Slice(refused, func(i, j int) bool { return refused[i].Worker < refused[j].Worker })
	return n, capacity, refused
}

// waitForWorker waits until a live worker serves the plugin.
func (e *Executor) waitForWorker(ctx context.Context) error {
	deadline := time.Now().Add(e.cfg.StartTimeout)
	stop := context.AfterFunc(ctx, func() {
		e.mu.Lock()
		e.cond.Broadcast()
		e.mu.Unlock()
	})
	defer stop()
	timer := time.AfterFunc(e.cfg.StartTimeout, func() {
		e.mu.Lock()
		e.cond.Broadcast()
		e.mu.Unlock()
	})
	defer timer.Stop()
	e.mu.Lock()
	defer e.mu.Unlock()
	logged := false
	for {
		n, _, refused := e.serving()
		switch {
		case n > 0:
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case !time.Now().Before(deadline):
			return &NoWorkersError{Plugin: e.cfg.Plugin, Waited: e.cfg.StartTimeout.String(), Live: len(e.live), Refused: refused}
		}
		if !logged {
			e.log.Info("waiting for a worker that serves the plugin", "timeout", e.cfg.StartTimeout)
			logged = true
		}
		e.cond.Wait()
	}
}

// Refused returns the live workers that run the plugin but not as pinned,
// and why, as of now.
func (e *Executor) Refused() []Refusal {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, _, r := e.serving()
	return r
}

// Config returns the configuration the executor runs with, defaults
// applied.
func (e *Executor) Config() Config { return e.cfg }

// window is the number of batches a new job may have cut and not handed
// to its caller.
func (e *Executor) window() int {
	if e.cfg.Window > 0 {
		return e.cfg.Window
	}
	e.mu.Lock()
	_, capacity, _ := e.serving()
	e.mu.Unlock()
	return min(max(2*capacity, minWindow), maxWindow)
}

// Bounds of the automatic window. Each batch held costs at most
// maxBatchBytes: 128 of them is the host's worst case, 128 MiB, reached
// only with large items; a stream of small items holds a few MiB.
const (
	minWindow = 16
	maxWindow = 128
)

// Map runs every item on the cluster and returns their results in input
// order, one per item. It blocks until all are done or ctx is cancelled;
// cancelling fails the unfinished items with ctx's error and stops their
// work on the workers. The error is nil when every item succeeded;
// otherwise it counts the failures and wraps the first one.
func (e *Executor) Map(ctx context.Context, items [][]byte) ([]backend.Result, error) {
	results := make([]backend.Result, len(items))
	if len(items) == 0 {
		return results, nil
	}
	got := make([]bool, len(items))
	for i, r := range e.run(ctx, slices.Values(items), false) {
		results[i], got[i] = r, true
	}
	// Items the job never read (it was stopped) resolve to why it stopped.
	var why error
	for i := range got {
		if !got[i] {
			if why == nil {
				why = e.stopCause(ctx)
			}
			results[i].Err = why
		}
	}
	return results, backend.FirstError(results)
}

// stopCause says why a job stopped before reading all its items.
func (e *Executor) stopCause(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.err != nil {
		return e.err
	}
	return backend.ErrClosed
}

// Apply runs one item and returns its result; err is the result's Err.
func (e *Executor) Apply(ctx context.Context, item []byte) (backend.Result, error) {
	rs, _ := e.Map(ctx, [][]byte{item})
	return rs[0], rs[0].Err
}

// Imap runs items as they come and yields each result with its input
// index, in input order. Like pool.Pool's Imap it is lazy and runs in
// bounded memory: at most Window batches are cut and not yet yielded. It
// reads items on a goroutine of its own and copies each before asking for
// the next. If the loop stops early, the job is stopped on the workers too,
// and Imap returns once items has yielded its next element or returned.
func (e *Executor) Imap(ctx context.Context, items iter.Seq[[]byte]) iter.Seq2[int, backend.Result] {
	return e.run(ctx, items, true)
}

// ImapUnordered is Imap yielding results as batches complete rather than
// in input order; the index says which item each belongs to.
func (e *Executor) ImapUnordered(ctx context.Context, items iter.Seq[[]byte]) iter.Seq2[int, backend.Result] {
	return e.run(ctx, items, false)
}

// ImapBatches is Imap yielding runs of results instead of single ones
// (backend.Batcher): each step gives the input index of a run of up to 256
// items and their results, consecutive and in input order. The slice is
// valid only until the loop body returns; the Results may be kept.
func (e *Executor) ImapBatches(ctx context.Context, items iter.Seq[[]byte]) iter.Seq2[int, []backend.Result] {
	return func(yield func(int, []backend.Result) bool) {
		e.runs(ctx, items, true, yield)
	}
}

// ImapRuns is ImapBatches over runs of items (backend.Batcher): the
// cluster takes them one at a time.
func (e *Executor) ImapRuns(ctx context.Context, runs iter.Seq[[][]byte]) iter.Seq2[int, []backend.Result] {
	return e.ImapBatches(ctx, backend.Items(runs))
}

// Close stops taking new calls, waits for the calls in progress to finish,
// then disconnects. Safe to call more than once and after Terminate.
func (e *Executor) Close() error {
	e.mu.Lock()
	if !e.closing {
		e.closing, e.err = true, backend.ErrClosed
	}
	for len(e.active) > 0 {
		e.cond.Wait()
	}
	e.mu.Unlock()
	e.shutdown()
	return nil
}

// Terminate stops every call in progress at once: their unfinished items
// fail with backend.ErrClosed, their batches are purged from the stream and
// the workers stop working on them. It waits for the calls to return.
// Safe to call more than once and after Close.
func (e *Executor) Terminate() error {
	e.mu.Lock()
	e.closing, e.err = true, backend.ErrClosed
	jobs := make([]*job, 0, len(e.active))
	for j := range e.active {
		jobs = append(jobs, j)
	}
	e.mu.Unlock()
	for _, j := range jobs {
		j.stop(backend.ErrClosed)
	}
	e.mu.Lock()
	for len(e.active) > 0 {
		e.cond.Wait()
	}
	e.mu.Unlock()
	e.shutdown()
	return nil
}

func (e *Executor) shutdown() {
	e.stopWatch()
	e.wg.Wait()
	e.l.close()
}

// addJob registers a call's job, or says why the executor takes no more.
func (e *Executor) addJob(j *job) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closing {
		return e.err
	}
	e.active[j] = struct{}{}
	return nil
}

func (e *Executor) removeJob(j *job) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.active, j)
	e.cond.Broadcast()
}

// Batch sizing, as in the local pool but for a trip through NATS: a
// batch should be tens of milliseconds of work, so that a worker's fetch,
// answer and ack (a few ms, several process wake-ups) stay small beside it
// and a slot's second batch covers the trip of its first. With 20 ms,
// 2,000 tasks of 10 ms on 4 workers of 2 processes (W9) took 3.7 s on a
// loaded 2-core machine, the ideal being 2.5 s.
const (
	targetBatchTime = 50 * time.Millisecond
	maxBatchItems   = 16384
	maxBatchBytes   = 1 << 20
)

// batchSize is how many items the next batch should hold.
func (e *Executor) batchSize() int {
	if e.cfg.ChunkSize > 0 {
		return e.cfg.ChunkSize
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.size
}

// observe adapts the batch size to a batch of n items that took d on a
// worker's slot, whose tasks take per each (0 if unknown): grow at most 2x
// per observation, from 1; shrink at once past the target (pool.observe's
// rule). A slot runs two batches at once, so d alone would halve the size.
func (e *Executor) observe(n int, d, per time.Duration) {
	if n == 0 || d <= 0 {
		return
	}
	if per > 0 {
		d = min(d, time.Duration(n)*per)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	want := int(float64(n) * float64(targetBatchTime) / float64(d))
	switch {
	case d > targetBatchTime:
		e.size = max(1, min(want, e.size))
	case 2*n >= e.size:
		e.size = min(max(want, e.size), 2*e.size, maxBatchItems)
	}
}

// errAbandoned ends a job whose caller stopped iterating.
var errAbandoned = errors.New("iteration stopped early")

// pid is this process's id, for job records.
var pid = os.Getpid()
