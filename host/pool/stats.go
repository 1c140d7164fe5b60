package pool

import (
	"errors"
	"sync"
	"time"

	"github.com/pluginpool/pluginpool/internal/hist"
)

// Stats is a snapshot of a pool's counters since Start.
type Stats struct {
	Plugin    string
	Succeeded int64 // items that returned a result
	Failed    int64 // items that resolved to an error, NotRun excluded
	NotRun    int64 // items the pool did not run because it degraded (ErrNotRun)
	Retries   int64 // runs of tasks that had run before: after a crash that cost a run, or a retry request
	Timeouts  int64 // tasks past TaskTimeout
	Restarts  int64 // worker restarts (recycling excluded)
	Workers   []WorkerStats
	// Latency percentiles of one task's time in a worker, estimated per
	// batch as its time at the head of the worker's queue over its items.
	P50, P95, P99 time.Duration
}

// WorkerStats describes one worker slot.
type WorkerStats struct {
	Slot     int
	Pid      int   // the current process, 0 while restarting
	Tasks    int64 // tasks answered in this slot, all generations
	Batches  int64
	Restarts int64
	Busy     time.Duration // time with a batch at the head of its queue
}

// counters are the pool's statistics; their own lock, so the hot path
// never waits on the pool's.
type counters struct {
	mu                                              sync.Mutex
	ok, failed, notRun, retries, timeouts, restarts int64
	workers                                         []WorkerStats
	hist                                            hist.Log2 // per-task time
}

func (c *counters) init(n int) {
	c.workers = make([]WorkerStats, n)
	for i := range c.workers {
		c.workers[i].Slot = i
	}
}

func (c *counters) started(slot, pid int) {
	c.mu.Lock()
	c.workers[slot].Pid = pid
	c.mu.Unlock()
}

func (c *counters) restarted(slot int) {
	c.mu.Lock()
	c.restarts++
	c.workers[slot].Restarts++
	c.workers[slot].Pid = 0
	c.mu.Unlock()
}

func (c *counters) batch(slot, n int, d time.Duration) {
	per := max(int64(d)/int64(max(n, 1)), 1)
	c.mu.Lock()
	w := &c.workers[slot]
	w.Tasks += int64(n)
	w.Batches++
	w.Busy += d
	c.hist.Add(time.Duration(per), int64(n))
	c.mu.Unlock()
}

func (c *counters) answered(ok, failed, timeouts int) {
	c.mu.Lock()
	c.ok += int64(ok)
	c.failed += int64(failed)
	c.timeouts += int64(timeouts)
	c.mu.Unlock()
}

func (c *counters) retried(n int) {
	c.mu.Lock()
	c.retries += int64(n)
	c.mu.Unlock()
}

func (c *counters) failedOne(err error) {
	if errors.Is(err, ErrNotRun) {
		c.addNotRun(1)
		return
	}
	c.mu.Lock()
	c.failed++
	if errors.Is(err, ErrTimeout) {
		c.timeouts++
	}
	c.mu.Unlock()
}

func (c *counters) addNotRun(n int) {
	c.mu.Lock()
	c.notRun += int64(n)
	c.mu.Unlock()
}

// Stats returns a snapshot of the pool's counters.
func (p *Pool) Stats() Stats {
	c := &p.stats
	c.mu.Lock()
	defer c.mu.Unlock()
	s := Stats{
		Plugin: p.cfg.Name, Succeeded: c.ok, Failed: c.failed, NotRun: c.notRun, Retries: c.retries,
		Timeouts: c.timeouts, Restarts: c.restarts,
		Workers: append([]WorkerStats(nil), c.workers...),
	}
	s.P50, s.P95, s.P99 = c.hist.Quantile(0.50), c.hist.Quantile(0.95), c.hist.Quantile(0.99)
	return s
}
