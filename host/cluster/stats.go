package cluster

import (
	"errors"
	"sync"
	"time"

	"github.com/pluginpool/pluginpool/host/backend"
	"github.com/pluginpool/pluginpool/internal/hist"
)

// counters are an executor's statistics, on their own lock so answers
// never wait on the executor's.
type counters struct {
	mu                            sync.Mutex
	ok, failed, retries, timeouts int64
	workers                       map[string]*backend.WorkerStats
	order                         []string  // worker ids, first seen first
	hist                          hist.Log2 // per-task time
}

func (c *counters) init() { c.workers = make(map[string]*backend.WorkerStats) }

// answered counts n items of an answer from worker, of which failed
// failed (timeouts of them by timeout); redelivered says the batch had been
// delivered before. busy and whole, when set, are the whole batch's time on
// its slot and item count.
func (c *counters) answered(worker string, n, failed, timeouts int, redelivered bool, busy time.Duration, whole int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ok += int64(n - failed)
	c.failed += int64(failed)
	c.timeouts += int64(timeouts)
	if redelivered {
		c.retries += int64(n)
	}
	w := c.workers[worker]
	if w == nil {
		w = &backend.WorkerStats{Slot: len(c.order)}
		c.workers[worker] = w
		c.order = append(c.order, worker)
	}
	w.Tasks += int64(n)
	if busy > 0 && whole > 0 {
		w.Batches++
		w.Busy += busy
		c.hist.Add(busy/time.Duration(whole), int64(whole))
	}
}

// failedLocally counts n items that failed without reaching a worker.
func (c *counters) failedLocally(n int, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failed += int64(n)
	if errors.Is(err, backend.ErrTimeout) {
		c.timeouts += int64(n)
	}
}

// Stats returns a snapshot of the executor's counters since Start. Workers
// lists each worker that answered, in the order they first did: Slot is
// that order, ID, Host and Pid the worker daemon's ("" and 0 once it left);
// Busy is the time its slots spent on this executor's batches. Restarts
// are the workers' business and stay 0 here. Retries counts items of
// batches delivered more than once.
func (e *Executor) Stats() backend.Stats {
	e.mu.Lock()
	live := make(map[string]WorkerInfo, len(e.live))
	for id, sw := range e.live {
		live[id] = sw.rec
	}
	e.mu.Unlock()
	c := &e.stats
	c.mu.Lock()
	defer c.mu.Unlock()
	s := backend.Stats{
		Plugin: e.cfg.Plugin, Succeeded: c.ok, Failed: c.failed, Retries: c.retries, Timeouts: c.timeouts,
		Workers: make([]backend.WorkerStats, len(c.order)),
	}
	for i, id := range c.order {
		s.Workers[i] = *c.workers[id]
		s.Workers[i].ID = id
		if rec, ok := live[id]; ok {
			s.Workers[i].Host, s.Workers[i].Pid = rec.Host, rec.Pid
		}
	}
	s.P50, s.P95, s.P99 = c.hist.Quantile(0.50), c.hist.Quantile(0.95), c.hist.Quantile(0.99)
	return s
}

// WorkerIDs returns the ids of the workers that answered, in the order of
// Stats().Workers.
func (e *Executor) WorkerIDs() []string {
	c := &e.stats
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.order...)
}
