package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go/jetstream"
)

// A janitor watches the jobs bucket, times each job's heartbeat on this
// process's clock, and reaps jobs whose host went silent: the record first
// (with a revision check, so a heartbeat that just arrived wins), then the
// consumer and the batches. Every worker runs one, and so does `pluginpool
// server`; reaping twice is harmless. Every few minutes it also deletes
// consumers left without a record (a reap cut short).
type janitor struct {
	l   *link
	log hclog.Logger
	// onPut is called for every put of a job record, onGone once when a
	// job ends: its record was deleted (its host finished it) or it was
	// reaped. Both on the janitor's goroutine; either may be nil.
	onPut  func(rec *jobRecord, isNew bool)
	onGone func(id string, why error)

	mu   sync.Mutex
	jobs map[string]*seenJob
}

type seenJob struct {
	rec  jobRecord
	rev  uint64
	seen time.Time
}

// Causes a job ends with, on a worker.
var (
	errJobEnded = errors.New("its host ended the job")
	errHostGone = errors.New("its host went silent past host_timeout")
)

const (
	livenessTick = 250 * time.Millisecond
	sweepEvery   = 2 * time.Minute
)

// orphanAge is how old a consumer without a record must be to be deleted:
// a host creates its job's consumer just before the record.
const orphanAge = time.Minute

// run watches until ctx is done.
func (jn *janitor) run(ctx context.Context) error {
	jn.jobs = make(map[string]*seenJob)
	w, err := jn.l.jobs.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("watching %s: %w", jobsBucket, err)
	}
	defer w.Stop()
	tick := time.NewTicker(livenessTick)
	defer tick.Stop()
	sweep := time.NewTimer(orphanAge)
	defer sweep.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ent, ok := <-w.Updates():
			if !ok {
				return nil
			}
			if ent != nil {
				jn.update(ent)
			}
		case <-tick.C:
			jn.check(ctx)
		case <-sweep.C:
			jn.sweep(ctx, orphanAge)
			sweep.Reset(sweepEvery)
		}
	}
}

func (jn *janitor) update(ent jetstream.KeyValueEntry) {
	id := ent.Key()
	if ent.Operation() != jetstream.KeyValuePut {
		jn.gone(id, errJobEnded)
		return
	}
	var rec jobRecord
	if err := json.Unmarshal(ent.Value(), &rec); err != nil || rec.ID != id || rec.HostTimeout <= 0 {
		jn.log.Warn("ignoring a malformed job record", "job", id, "error", err)
		return
	}
	jn.mu.Lock()
	sj, known := jn.jobs[id]
	if !known {
		sj = &seenJob{}
		jn.jobs[id] = sj
	}
	sj.rec, sj.rev, sj.seen = rec, ent.Revision(), time.Now()
	jn.mu.Unlock()
	if jn.onPut != nil {
		jn.onPut(&rec, !known)
	}
}

func (jn *janitor) gone(id string, why error) {
	jn.mu.Lock()
	_, known := jn.jobs[id]
	delete(jn.jobs, id)
	jn.mu.Unlock()
	if known && jn.onGone != nil {
		jn.onGone(id, why)
	}
}

// check reaps the jobs whose heartbeat is overdue.
func (jn *janitor) check(ctx context.Context) {
	type overdue struct {
		id  string
		rev uint64
		d   time.Duration
	}
	var late []overdue
	jn.mu.Lock()
	for id, sj := range jn.jobs {
		if d := time.Since(sj.seen); d > sj.rec.HostTimeout {
			late = append(late, overdue{id, sj.rev, d})
		}
	}
	jn.mu.Unlock()
	for _, o := range late {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := reap(rctx, jn.l, o.id, o.rev)
		cancel()
		switch {
		case err == nil:
			jn.log.Info("reaped a job whose host went silent", "job", o.id, "silent", o.d.Round(time.Millisecond))
			jn.gone(o.id, errHostGone)
		default:
			// A heartbeat came meanwhile (errRecordMoved: the watch
			// brings it), or this process is the one cut off: look
			// again a host_timeout later. The revision check keeps a
			// janitor that only now reconnects from reaping a live job.
			if !errors.Is(err, errRecordMoved) {
				jn.log.Warn("reaping a job whose host went silent", "job", o.id, "error", err)
			}
			jn.mu.Lock()
			if sj := jn.jobs[o.id]; sj != nil {
				sj.seen = time.Now()
			}
			jn.mu.Unlock()
		}
	}
}

// sweep deletes the consumers and batches of jobs that have no record,
// if their consumer is older than age.
func (jn *janitor) sweep(ctx context.Context, age time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	list := jn.l.stream.ListConsumers(ctx)
	var orphans []string
	for ci := range list.Info() {
		id, ok := strings.CutPrefix(ci.Name, "job_")
		if !ok || time.Since(ci.Created) < age {
			continue
		}
		if _, err := jn.l.jobs.Get(ctx, id); errors.Is(err, jetstream.ErrKeyNotFound) {
			orphans = append(orphans, id)
		}
	}
	for _, id := range orphans {
		if err := reap(ctx, jn.l, id, 0); err != nil {
			jn.log.Warn("deleting a job left without a record", "job", id, "error", err)
		} else {
			jn.log.Info("deleted a job left without a record", "job", id)
		}
	}
	// Every finished job leaves a purge marker in the bucket; keep the
	// bucket from growing with them.
	if err := jn.l.jobs.PurgeDeletes(ctx, jetstream.DeleteMarkersOlderThan(markerAge)); err != nil {
		jn.log.Debug("dropping old job markers", "error", err)
	}
}

// markerAge is how long the marker of a finished job stays in the jobs
// bucket.
const markerAge = 10 * time.Minute

// errRecordMoved: the job record changed since the revision given to reap.
var errRecordMoved = errors.New("the job record changed")

// reap removes job id from the cluster: its record (with rev > 0, only if
// still at revision rev; workers cancel its work when they see it go),
// its consumer, its batches. Parts already gone are no error.
func reap(ctx context.Context, l *link, id string, rev uint64) error {
	var opts []jetstream.KVDeleteOpt
	if rev > 0 {
		opts = append(opts, jetstream.LastRevision(rev))
	}
	var errs []error
	if err := l.jobs.Purge(ctx, id, opts...); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		if rev > 0 && (errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists)) {
			return errRecordMoved
		}
		errs = append(errs, fmt.Errorf("deleting its record: %w", err))
	}
	if err := l.stream.DeleteConsumer(ctx, consumerName(id)); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		errs = append(errs, fmt.Errorf("deleting its consumer: %w", err))
	}
	if err := l.stream.Purge(ctx, jetstream.WithPurgeSubject(batchSubject(id))); err != nil {
		errs = append(errs, fmt.Errorf("purging its batches: %w", err))
	}
	return errors.Join(errs...)
}
