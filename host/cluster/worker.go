package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"runtime"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/pluginpool/pluginpool/host/backend"
	"github.com/pluginpool/pluginpool/host/pool"
	"github.com/pluginpool/pluginpool/host/settings"
)

// WorkerConfig describes a worker daemon. Plugins is required.
type WorkerConfig struct {
	// NATS is the cluster to serve.
	NATS NATS
	// Plugins are the plugins to serve, by Name (the name hosts ask for).
	// Each runs as Workers slots of one process (default: one per core),
	// each slot taking up to InFlight batches at once; the rest of each
	// Config applies to every slot as it would to a local pool. Required.
	Plugins []pool.Config
	// Logger receives the worker's log lines; plugins without a Logger of
	// their own log there too. Default: info and up to os.Stderr.
	Logger hclog.Logger
}

// Worker serves jobs from the cluster until it is drained or terminated.
// Its methods are safe for concurrent use.
type Worker struct {
	id      string
	log     hclog.Logger
	baseLog hclog.Logger // WorkerConfig.Logger: plugins log there
	l       *link
	start   time.Time
	jn      *janitor

	// pulling is cancelled when the worker stops taking batches (Drain,
	// Terminate); life when everything must end (Terminate), or once a
	// drain is done.
	pulling, life       context.Context
	stopPulling, ending context.CancelCauseFunc

	mu       sync.Mutex
	plugins  map[string]*wplugin
	jobs     map[string]*wjob
	draining bool
	done     bool

	reloadMu sync.Mutex     // one Reload at a time
	loops    sync.WaitGroup // the janitor and the registry beat
	runners  sync.WaitGroup // one pull loop per job served
	batches  sync.WaitGroup // batches running
	stats    workerCounters
}

// wjob is a job as a worker sees it.
type wjob struct {
	rec    jobRecord
	ctx    context.Context // cancelled when the job ends or the worker is terminated
	cancel context.CancelCauseFunc
	plugin *wplugin // nil while the worker does not serve it
	// running says a runner pulls for the job.
	running bool
}

// Causes a worker ends a job's work with.
var errTerminated = errors.New("the worker was terminated")

// fetchWait is how long one pull request waits for batches. A drain waits
// for the pulls in progress: at most this long.
const fetchWait = time.Second

// answerTimeout bounds one answer's request; it is retried until the host
// confirms or the job ends.
const answerTimeout = 10 * time.Second

// StartWorker starts every plugin's slots, connects, and begins serving:
// it joins the registry, watches for jobs and reaps those whose host went
// silent. It fails if a plugin cannot start (a *pool.StartError) or the
// cluster cannot be reached (a *ConnectError); then nothing is left
// running. Cancelling ctx aborts the start only.
func StartWorker(ctx context.Context, cfg WorkerConfig) (*Worker, error) {
	if cfg.Logger == nil {
		cfg.Logger = hclog.New(&hclog.LoggerOptions{Name: "pluginpool", Level: hclog.Info, Output: os.Stderr})
	}
	n, errs := cfg.NATS.withDefaults()
	if len(cfg.Plugins) == 0 {
		errs = append(errs, fmt.Errorf("%w: no plugins to serve", ErrInvalidConfig))
	}
	seen := map[string]bool{}
	plugins := make([]pool.Config, len(cfg.Plugins))
	for i, pc := range cfg.Plugins {
		if pc.Name == "" || !keyRE.MatchString(pc.Name) {
			errs = append(errs, fmt.Errorf("%w: plugin %q: a served plugin needs a Name of letters, digits, '_' and '-'", ErrInvalidConfig, pc.Name))
		}
		if seen[pc.Name] {
			errs = append(errs, fmt.Errorf("%w: plugin %q listed twice", ErrInvalidConfig, pc.Name))
		}
		seen[pc.Name] = true
		plugins[i] = workerDefaults(pc, cfg.Logger)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	log := cfg.Logger.Named("worker")
	w := &Worker{
		id:      workerID(),
		log:     log,
		baseLog: cfg.Logger,
		start:   time.Now(),
		plugins: make(map[string]*wplugin),
		jobs:    make(map[string]*wjob),
	}
	w.log = log.With("worker", w.id)
	if err := w.startPlugins(ctx, plugins); err != nil {
		return nil, err
	}
	l, err := dial(ctx, n, "pluginpool worker "+w.id, w.log)
	if err != nil {
		w.stopPlugins(true)
		return nil, err
	}
	w.l = l
	w.life, w.ending = context.WithCancelCause(context.WithoutCancel(ctx))
	w.pulling, w.stopPulling = context.WithCancelCause(w.life)
	if err := w.beat(ctx); err != nil {
		w.ending(errTerminated)
		w.stopPlugins(true)
		l.close()
		return nil, fmt.Errorf("%w: joining the registry: %v", ErrConnect, err)
	}
	w.jn = &janitor{l: l, log: w.log, onPut: w.onJob, onGone: w.jobGone}
	w.loops.Go(func() {
		if err := w.jn.run(w.life); err != nil {
			w.log.Error("watching jobs", "error", err)
		}
	})
	w.loops.Go(w.beats)
	names := make([]string, 0, len(w.plugins))
	for name := range w.plugins {
		names = append(names, name)
	}
	sort.Strings(names)
	w.log.Info("serving", "plugins", names, "nats", l.nc.ConnectedUrlRedacted())
	return w, nil
}

// keyRE is what a KV key, and so a plugin or worker name, may hold.
var keyRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// workerDefaults fills in what a worker needs to know of a plugin's
// config before starting it: its settings' defaults (settings.Pool;
// pool.Start reports a value out of bounds) and the worker's logger.
func workerDefaults(c pool.Config, log hclog.Logger) pool.Config {
	settings.Apply(&c, settings.Pool)
	if c.Logger == nil {
		c.Logger = log
	}
	return c
}

// workerID names a worker: its machine, its pid and a random tag, so two
// containers that share both still differ.
func workerID() string {
	h := regexp.MustCompile(`[^A-Za-z0-9_-]+`).ReplaceAllString(hostname(), "-")
	if len(h) > 40 {
		h = h[:40]
	}
	return fmt.Sprintf("%s-%d-%s", h, os.Getpid(), nuid.Next()[16:])
}

// ID returns the worker's id, as `pluginpool workers` lists it.
func (w *Worker) ID() string { return w.id }

func (w *Worker) startPlugins(ctx context.Context, cfgs []pool.Config) error {
	type started struct {
		p   *wplugin
		err error
	}
	out := make([]started, len(cfgs))
	var wg sync.WaitGroup
	for i, c := range cfgs {
		wg.Go(func() {
			p, err := startPlugin(ctx, c)
			out[i] = started{p, err}
		})
	}
	wg.Wait()
	var errs []error
	for _, s := range out {
		if s.err != nil {
			errs = append(errs, s.err)
		} else {
			w.plugins[s.p.name] = s.p
		}
	}
	if len(errs) > 0 {
		w.stopPlugins(true)
		return errors.Join(errs...)
	}
	return nil
}

func (w *Worker) stopPlugins(now bool) {
	w.mu.Lock()
	ps := make([]*wplugin, 0, len(w.plugins))
	for _, p := range w.plugins {
		ps = append(ps, p)
	}
	w.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Go(func() { p.stop(now) })
	}
	wg.Wait()
}

// record describes the worker for the registry.
func (w *Worker) record() WorkerInfo {
	w.mu.Lock()
	defer w.mu.Unlock()
	rec := WorkerInfo{ID: w.id, Host: hostname(), Pid: os.Getpid(), Cores: runtime.NumCPU(), Started: w.start, Draining: w.draining}
	for _, j := range w.jobs {
		if j.running {
			rec.Jobs++
		}
	}
	for _, p := range w.plugins {
		rec.Plugins = append(rec.Plugins, p.record())
	}
	sort.Slice(rec.Plugins, func(i, k int) bool { return rec.Plugins[i].Name < rec.Plugins[k].Name })
	return rec
}

// beat puts the worker record.
func (w *Worker) beat(ctx context.Context) error {
	rec := w.record()
	data, _ := json.Marshal(&rec)
	ctx, cancel := context.WithTimeout(ctx, workerBeat)
	defer cancel()
	_, err := w.l.workers.Put(ctx, w.id, data)
	return err
}

// beats refreshes the worker record until the worker ends.
func (w *Worker) beats() {
	t := time.NewTicker(workerBeat)
	defer t.Stop()
	for {
		select {
		case <-w.life.Done():
			return
		case <-t.C:
			if err := w.beat(w.life); err != nil && w.life.Err() == nil {
				w.log.Warn("refreshing the worker record", "error", err)
			}
		}
	}
}

// onJob sees a job record put: a new job to serve, or a heartbeat.
func (w *Worker) onJob(rec *jobRecord, isNew bool) {
	if !isNew {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return
	}
	j := &wjob{rec: *rec}
	j.ctx, j.cancel = context.WithCancelCause(w.life)
	w.jobs[rec.ID] = j
	w.consider(j)
}

// consider starts pulling for job j if the worker serves it and is not
// draining. Called with w.mu held.
func (w *Worker) consider(j *wjob) {
	if j.running || w.draining || j.ctx.Err() != nil {
		return
	}
	p := w.plugins[j.rec.Plugin]
	if p == nil {
		return
	}
	if ok, why := p.serves(&j.rec); !ok {
		w.log.Info("not serving a job: the plugin here is not what its host pins", "job", j.rec.ID, "plugin", j.rec.Plugin, "host", j.rec.Host, "reason", why)
		return
	}
	j.plugin, j.running = p, true
	p.mu.Lock()
	p.runners++
	p.mu.Unlock()
	w.log.Debug("serving a job", "job", j.rec.ID, "plugin", j.rec.Plugin, "host", j.rec.Host)
	w.runners.Go(func() { w.pull(j) })
}

// jobGone ends a job's work here: its record was deleted or it was reaped.
func (w *Worker) jobGone(id string, why error) {
	w.mu.Lock()
	j := w.jobs[id]
	delete(w.jobs, id)
	w.mu.Unlock()
	if j != nil {
		j.cancel(why)
	}
}

// pull fetches the job's batches while the worker has room for them, and
// runs each on the slot booked for it.
func (w *Worker) pull(j *wjob) {
	p := j.plugin
	defer func() {
		p.mu.Lock()
		p.runners--
		p.cond.Broadcast()
		p.mu.Unlock()
		w.mu.Lock()
		j.running = false
		w.mu.Unlock()
	}()
	ctx, stop := context.WithCancel(w.pulling)
	defer stop()
	defer context.AfterFunc(j.ctx, stop)()
	cons, err := w.consumer(ctx, j.rec.ID)
	if err != nil {
		w.log.Debug("not serving a job: its consumer is gone", "job", j.rec.ID, "error", err)
		return
	}
	for backoff := time.Duration(0); ; {
		units := p.reserve(ctx, &j.rec)
		if units == nil {
			return
		}
		batch, err := cons.Fetch(len(units), jetstream.FetchMaxWait(fetchWait))
		used := 0
		if err == nil {
			for msg := range batch.Messages() {
				s := units[used]
				used++
				p.start(s)
				w.batches.Add(1)
				go func() {
					defer w.batches.Done()
					p.release(s, true, w.runBatch(j, s, msg))
				}()
			}
			err = batch.Error()
		}
		for _, s := range units[used:] {
			p.release(s, false, 0)
		}
		switch {
		case err == nil:
			backoff = 0
		case errors.Is(err, jetstream.ErrConsumerNotFound), errors.Is(err, jetstream.ErrConsumerDeleted),
			errors.Is(err, jetstream.ErrStreamNotFound):
			return // the job ended; the janitor or its host says so too
		case ctx.Err() != nil:
			return
		default:
			backoff = min(max(2*backoff, 50*time.Millisecond), time.Second)
			w.log.Debug("pulling batches; retrying", "job", j.rec.ID, "error", err, "in", backoff)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
		}
	}
}

// consumer opens job id's consumer, retrying while JetStream does not
// answer (a cluster electing a leader).
func (w *Worker) consumer(ctx context.Context, id string) (jetstream.Consumer, error) {
	for backoff := 50 * time.Millisecond; ; backoff = min(2*backoff, time.Second) {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		cons, err := w.l.stream.Consumer(cctx, consumerName(id))
		cancel()
		if err == nil || errors.Is(err, jetstream.ErrConsumerNotFound) || ctx.Err() != nil {
			return cons, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(backoff):
		}
	}
}

// runBatch runs one delivery of a batch on slot s, answers the host and
// acks the message once the host has the answer. It returns the number of
// items it answered.
func (w *Worker) runBatch(j *wjob, s *slot, msg jetstream.Msg) int {
	md, err := msg.Metadata()
	if err != nil {
		w.log.Error("dropping a message that is not a JetStream delivery", "job", j.rec.ID, "error", err)
		return 0
	}
	task, err := decodeTask(msg.Data())
	if err != nil {
		// Nothing can run it: leave it for its host's purge.
		w.log.Error("dropping a batch", "job", j.rec.ID, "error", err)
		_ = msg.Term()
		return 0
	}
	delivery := int(md.NumDelivered)
	n := len(task.Ends)
	// Keep the batch ours while it runs and until the host has its answer.
	alive, stopAlive := context.WithCancel(j.ctx)
	var beating sync.WaitGroup
	beating.Go(func() { keepAlive(alive, msg, max(j.rec.AckWait/3, 10*time.Millisecond)) })
	defer beating.Wait()
	defer stopAlive()

	var lostErr error
	switch {
	case delivery > 1 && !s.info.Idempotent:
		lostErr = &LostError{Plugin: j.rec.Plugin, Deliveries: delivery, Reason: lostNotIdempotent}
	case delivery > max(j.rec.MaxAttempts, 1):
		lostErr = &LostError{Plugin: j.rec.Plugin, Deliveries: delivery, Reason: lostGaveUp}
	}
	ab := takeBuilder(task.Seq, w.id, uint32(delivery), w.l.maxPayload)
	defer builders.Put(ab)
	subj := answerSubject(j.rec.ID)
	began := time.Now()
	sent := began
	send := func(last bool) bool {
		if err := w.answer(j, subj, ab.cut(last, time.Since(began))); err != nil {
			return false // the job ended: nothing to ack
		}
		sent = time.Now()
		return true
	}
	// Results are encoded as they come, a whole answered run of the
	// slot's pool at a time, and a part goes to the host when it is full
	// or partEvery has passed: a long batch reports progress, and what
	// came back is never run again.
	due := func() bool { return time.Since(sent) >= partEvery }
	failed, unserved := 0, false
	var notRun error // the first unserved item's error
	if lostErr != nil {
		one := []backend.Result{{Err: lostErr}}
		for range n {
			if !ab.put(one, due, send) {
				return 0
			}
		}
		failed = n
	} else {
		// Whole runs rather than Imap's step per item: 27% of the
		// worker's CPU went to iterating and adding results one by one.
		for _, rs := range s.pool.ImapBatches(j.ctx, items(task)) {
			stop := false
			for k := range rs {
				err := rs[k].Err
				if err == nil {
					continue
				}
				failed++
				if (errors.Is(err, backend.ErrDegraded) || errors.Is(err, backend.ErrClosed)) && j.ctx.Err() == nil {
					// The slot stopped serving under the batch. An
					// idempotent batch runs again on another slot or
					// worker; the items of another may have run, and
					// fail as the pool says.
					unserved = true
					if notRun == nil {
						notRun = err
					}
					if s.info.Idempotent {
						rs, stop = rs[:k], true
						break
					}
				}
			}
			if !ab.put(rs, due, send) {
				return 0
			}
			if stop {
				break
			}
		}
		// A slot that stops serving stops reading the batch too: the
		// items it never read never ran. They fail as the ones it gave
		// up on did, so that the answer covers the batch: the host waits
		// for every item of a batch acked, and nothing would redeliver
		// it.
		if left := n - (ab.first + ab.n); left > 0 && !(unserved && s.info.Idempotent) && j.ctx.Err() == nil {
			if notRun == nil {
				notRun = &backend.NotRunError{Plugin: j.rec.Plugin, Cause: errors.New("the worker's slot stopped reading the batch")}
			}
			rest := []backend.Result{{Err: notRun}}
			for range left {
				if !ab.put(rest, due, send) {
					return 0
				}
			}
			failed += left
		}
	}
	if unserved {
		j.plugin.degraded(w.life, s, w.log.Error)
	}
	if j.ctx.Err() != nil {
		// The job ended, or this worker was terminated: then give an
		// idempotent batch back at once. Another worker runs it; the
		// host keeps whichever answer comes first.
		if context.Cause(j.ctx) == errTerminated && s.info.Idempotent {
			_ = msg.Nak()
		}
		return 0
	}
	if unserved && s.info.Idempotent {
		_ = msg.Nak()
		return 0
	}
	ab.itemNs = uint64(s.pool.Stats().P50)
	if !send(true) {
		return 0
	}
	if err := msg.Ack(); err != nil {
		w.log.Debug("acking a batch", "job", j.rec.ID, "batch", task.Seq, "error", err)
	}
	w.stats.batch(n, failed, delivery > 1)
	return n
}

// partEvery is how often a long batch sends what it has answered so far.
const partEvery = time.Second

// keepAlive tells JetStream the batch is still being worked on every
// interval, until ctx is done.
func keepAlive(ctx context.Context, msg jetstream.Msg, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = msg.InProgress()
		}
	}
}

// answer sends one answer part to the host and waits for its
// confirmation, retrying until the host confirms or the job ends.
func (w *Worker) answer(j *wjob, subj string, data []byte) error {
	for backoff := 50 * time.Millisecond; ; backoff = min(2*backoff, time.Second) {
		ctx, cancel := context.WithTimeout(j.ctx, answerTimeout)
		resp, err := w.l.nc.RequestWithContext(ctx, subj, data)
		cancel()
		if err == nil {
			if string(resp.Data) == replyGone {
				j.cancel(errJobEnded)
				return errJobEnded
			}
			return nil
		}
		if j.ctx.Err() != nil {
			return j.ctx.Err()
		}
		if !errors.Is(err, nats.ErrNoResponders) {
			w.log.Debug("answering; retrying", "job", j.rec.ID, "error", err)
		}
		select {
		case <-j.ctx.Done():
			return j.ctx.Err()
		case <-time.After(backoff):
		}
	}
}

// Drain stops taking batches, finishes and answers the ones the worker
// holds, leaves the registry, then stops its plugins and disconnects. It
// blocks until then. If ctx is done first, the worker is terminated
// instead. Safe to call more than once, and after Terminate.
func (w *Worker) Drain(ctx context.Context) error {
	w.mu.Lock()
	w.draining = true
	w.mu.Unlock()
	w.log.Info("draining: finishing the batches held, taking no more")
	w.stopPulling(errors.New("draining"))
	_ = w.beat(w.life) // says draining: hosts stop counting on it
	done := make(chan struct{})
	go func() {
		w.runners.Wait() // the pulls in progress may still bring batches
		w.batches.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		return w.Terminate()
	}
	return w.shutdown(false)
}

// Terminate stops the worker now: the batches it runs are cancelled and,
// for idempotent plugins, given back to the stream at once; the others
// are redelivered after ack_wait and fail as possibly run. It blocks until
// the plugins are gone. Safe to call more than once.
func (w *Worker) Terminate() error {
	w.ending(errTerminated)
	return w.shutdown(true)
}

func (w *Worker) shutdown(now bool) error {
	w.mu.Lock()
	if w.done {
		w.mu.Unlock()
		w.loops.Wait()
		return nil
	}
	w.done = true
	w.mu.Unlock()
	w.stopPulling(errors.New("stopping"))
	w.runners.Wait()
	w.batches.Wait()
	if w.l.nc.IsConnected() { // else the record ages out in 10s
		ctx, cancel := context.WithTimeout(context.WithoutCancel(w.pulling), 5*time.Second)
		if err := w.l.workers.Purge(ctx, w.id); err != nil {
			w.log.Warn("leaving the registry", "error", err)
		}
		cancel()
	}
	w.ending(errTerminated)
	w.loops.Wait()
	w.stopPlugins(now)
	w.l.close()
	w.log.Info("stopped")
	return nil
}

// Reload brings the served plugins to plugins: new ones are started,
// removed ones drained and stopped, changed ones (config, or executable
// bytes) replaced one slot at a time, each new slot started before the old
// one stops taking batches, and the old one closed once it has answered
// what it held. No batch is lost. A plugin that fails to start keeps its
// old slots; the error names it.
func (w *Worker) Reload(ctx context.Context, plugins []pool.Config) error {
	w.reloadMu.Lock()
	defer w.reloadMu.Unlock()
	log := w.log
	want := make(map[string]pool.Config, len(plugins))
	for _, c := range plugins {
		want[c.Name] = workerDefaults(c, w.baseLog)
	}
	w.mu.Lock()
	have := make(map[string]*wplugin, len(w.plugins))
	for name, p := range w.plugins {
		have[name] = p
	}
	w.mu.Unlock()
	var errs []error
	for name, p := range have {
		if _, ok := want[name]; !ok {
			log.Info("reload: no longer serving a plugin", "plugin", name)
			w.mu.Lock()
			delete(w.plugins, name)
			w.mu.Unlock()
			p.stop(false)
		}
	}
	for name, cfg := range want {
		p := have[name]
		if p == nil {
			np, err := startPlugin(ctx, cfg)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			log.Info("reload: serving a new plugin", "plugin", name)
			w.mu.Lock()
			w.plugins[name] = np
			w.mu.Unlock()
			continue
		}
		changed, err := p.reload(ctx, cfg)
		if err != nil {
			errs = append(errs, err)
		}
		if changed {
			r := p.record()
			log.Info("reload: replaced the plugin's slots", "plugin", name, "variants", r.Variants)
		}
	}
	// Jobs this worker could not serve before may be servable now.
	w.mu.Lock()
	for _, j := range w.jobs {
		w.consider(j)
	}
	w.mu.Unlock()
	_ = w.beat(ctx)
	return errors.Join(errs...)
}

// WorkerStats counts what a worker did.
type WorkerStats struct {
	Batches     int64 // batches answered
	Redelivered int64 // of them, delivered before to another worker
	Items       int64
	Failed      int64 // items that failed
}

type workerCounters struct {
	mu sync.Mutex
	s  WorkerStats
}

func (c *workerCounters) batch(n, failed int, redelivered bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.s.Batches++
	c.s.Items += int64(n)
	c.s.Failed += int64(failed)
	if redelivered {
		c.s.Redelivered++
	}
}

// Stats returns the worker's counters since it started.
func (w *Worker) Stats() WorkerStats {
	w.stats.mu.Lock()
	defer w.stats.mu.Unlock()
	return w.stats.s
}

// PluginStats returns one backend.Stats per served plugin, by name: the
// counters of its slots (each a one-process pool) added up, and one
// WorkerStats per slot.
func (w *Worker) PluginStats() []backend.Stats {
	w.mu.Lock()
	ps := make([]*wplugin, 0, len(w.plugins))
	for _, p := range w.plugins {
		ps = append(ps, p)
	}
	w.mu.Unlock()
	sort.Slice(ps, func(i, k int) bool { return ps[i].name < ps[k].name })
	out := make([]backend.Stats, 0, len(ps))
	for _, p := range ps {
		p.mu.Lock()
		slots := append([]*slot(nil), p.slots...)
		p.mu.Unlock()
		sum := backend.Stats{Plugin: p.name}
		for _, s := range slots {
			st := s.pool.Stats()
			sum.Succeeded += st.Succeeded
			sum.Failed += st.Failed
			sum.Retries += st.Retries
			sum.Timeouts += st.Timeouts
			sum.Restarts += st.Restarts
			sum.P50, sum.P95, sum.P99 = max(sum.P50, st.P50), max(sum.P95, st.P95), max(sum.P99, st.P99)
			for _, ws := range st.Workers {
				ws.Slot = s.index
				sum.Workers = append(sum.Workers, ws)
			}
		}
		out = append(out, sum)
	}
	return out
}
