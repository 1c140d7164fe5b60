package pool

import (
	"errors"
	"sync"
	"time"

	"github.com/pluginpool/pluginpool/host/backend"
	"github.com/pluginpool/pluginpool/internal/hist"
)

// Stats is a snapshot of a pool's counters since Start
// (backend.Stats): each worker slot's Pid is its current plugin process,
// 0 while it restarts.
type Stats = backend.Stats

// WorkerStats describes one worker slot (backend.WorkerStats).
type WorkerStats = backend.WorkerStats

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
