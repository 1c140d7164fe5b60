package pool

import (
	"context"
	"errors"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/pluginpool/pluginpool/host/backend"
)

// Pool is one plugin's pool of worker processes. Its methods are safe for
// concurrent use; concurrent calls share the workers fairly, batch by batch.
type Pool struct {
	cfg     Config
	log     hclog.Logger
	info    Info
	sb      *sandbox // private directory, verified executable, cgroup, watcher
	command command  // how to start a plugin process: an interpreter for .py files
	lanes   bool     // offer plugins the lane (worker.go); PLUGINPOOL_LANE=off keeps every stream on gRPC

	mu       sync.Mutex
	cond     *sync.Cond // Broadcast on any change a sender, feeder or Close waits for
	state    poolState
	err      error             // why the pool stopped serving: ErrClosed or a *DegradedError
	notRun   *NotRunError      // degraded: what items it will not run resolve to
	workers  []*worker         // the live generation of each slot; nil while restarting
	jobs     []*job            // jobs with items left to cut, served in turn
	rr       int               // round-robin cursor into jobs
	nextIdle int               // the slot takeIdle took last, and looks at first
	active   map[*job]struct{} // jobs whose calls have not returned
	retry    []*batch          // items to run again, sent before new work
	size     int               // adaptive batch size
	nextID   uint64            // next task id
	restart  []restartRecord   // restarts within RestartWindow
	stats    counters

	stop chan struct{} // closed when the pool stops: ends backoff sleeps and the watchdog
	// killCtx is cancelled when the pool must die at once (Terminate, a
	// failed Start, degradation) and after Close: it SIGKILLs every plugin
	// process, including ones still starting.
	killCtx context.Context
	kill    context.CancelFunc
	wg      sync.WaitGroup
}

type restartRecord struct {
	at    time.Time
	cause error
}

//go:generate go run golang.org/x/tools/cmd/stringer@v0.38.0 -type=poolState -trimprefix=pool -output=poolstate_string.go
//go:generate go run golang.org/x/tools/cmd/stringer@v0.38.0 -type=workerState -trimprefix=worker -output=workerstate_string.go

// poolState moves forward only: running → closing → closed, or running →
// degraded / terminated, all under Pool.mu.
type poolState int

const (
	poolRunning    poolState = iota // serving calls
	poolClosing                     // Close called: no new calls, draining
	poolClosed                      // stopped after draining
	poolTerminated                  // stopped at once by Terminate or a failed Start
	poolDegraded                    // too many restarts: failing every call
)

// Start starts cfg.Workers processes of the plugin and returns when all are
// ready to take work, or with a *StartError (matching ErrStart) if any
// could not start; then none is left running. Cancelling ctx aborts the
// start; it does not affect the pool once Start has returned.
func Start(ctx context.Context, cfg Config) (*Pool, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	log := cfg.Logger.Named(cfg.Name)
	sb, err := newSandbox(&cfg, log)
	if err != nil {
		return nil, &StartError{Plugin: cfg.Name, Path: cfg.Path, Err: err}
	}
	p := &Pool{
		cfg:     cfg,
		log:     log,
		sb:      sb,
		lanes:   os.Getenv("PLUGINPOOL_LANE") != "off",
		workers: make([]*worker, cfg.Workers),
		active:  make(map[*job]struct{}),
		size:    1,
		nextID:  1,
		stop:    make(chan struct{}),
	}
	// Values of the caller's ctx, not its cancellation: the pool outlives Start.
	p.killCtx, p.kill = context.WithCancel(context.WithoutCancel(ctx))
	p.cond = sync.NewCond(&p.mu)
	p.stats.init(cfg.Workers)

	ready := make(chan error, cfg.Workers)
	for slot := range cfg.Workers {
		p.wg.Add(1)
		go p.supervise(slot, ready)
	}
	var first error
	for range cfg.Workers {
		select {
		case err := <-ready:
			if err != nil && first == nil {
				first = err
			}
		case <-ctx.Done():
			if first == nil {
				first = ctx.Err()
			}
		}
		if first != nil {
			break
		}
	}
	if first != nil {
		p.shutdown(poolTerminated, ErrClosed)
		return nil, first
	}
	if cfg.TaskTimeout > 0 {
		p.wg.Add(1)
		go p.watchdog()
	}
	return p, nil
}

var _ backend.Describer = (*Pool)(nil)

// Starter returns the backend.StartFunc that starts a pool for cfg: local
// plugin processes as the back-end of a pipeline stage or a CLI command.
func Starter(cfg Config) backend.StartFunc { return backend.Bind(Start, cfg) }

// MaxItemBytes returns the largest item the pool takes (Config.MaxItemBytes,
// default applied); a larger one fails alone with ErrTooLarge.
func (p *Pool) MaxItemBytes() int { return p.cfg.MaxItemBytes }

// Info returns what the plugin reported about itself at start.
func (p *Pool) Info() Info {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.info
}

// Config returns the configuration the pool runs with, defaults applied.
func (p *Pool) Config() Config { return p.cfg }

// Close stops taking new calls, waits for the calls in progress to finish,
// then stops the workers and waits for them to exit. It returns nil, or the
// pool's degraded error. Safe to call more than once and after Terminate.
func (p *Pool) Close() error {
	p.mu.Lock()
	if p.state == poolRunning {
		p.state = poolClosing
		p.err = ErrClosed
		p.cond.Broadcast()
	}
	for len(p.active) > 0 && p.state == poolClosing {
		p.cond.Wait()
	}
	p.mu.Unlock()
	return p.shutdown(poolClosed, ErrClosed)
}

// Terminate stops the workers at once (SIGKILL) and fails every unfinished
// item with ErrClosed. It waits for the processes to exit. Safe to call more
// than once and after Close.
func (p *Pool) Terminate() error {
	return p.shutdown(poolTerminated, ErrClosed)
}

// shutdown halts the pool and waits for its supervisors.
func (p *Pool) shutdown(to poolState, err error) error {
	final := p.halt(to, err)
	p.wg.Wait()
	p.kill()
	// Every worker has been reaped: the supervisors waited for them.
	p.sb.close(p.log)
	if errors.Is(final, ErrDegraded) {
		return final
	}
	return nil
}

// halt moves the pool to a final state (unless it is in one already), ends
// every worker and fails every unfinished item: with err, or, when the
// pool degraded, as not run (a *NotRunError), except the items on the
// workers' wire, which their workers' retire settles: those may have run.
// It does not wait: a supervisor degrading the pool calls it. It returns
// the pool's final error.
func (p *Pool) halt(to poolState, err error) error {
	p.mu.Lock()
	if p.state == poolRunning || p.state == poolClosing {
		p.state = to
		p.err = err
		if to == poolDegraded {
			p.notRun = &NotRunError{Plugin: p.cfg.Name, Cause: err}
		}
		close(p.stop)
		if to != poolClosed {
			p.kill()
		}
	}
	final, notRun := p.err, p.notRun
	jobs := make([]*job, 0, len(p.active))
	for j := range p.active {
		jobs = append(jobs, j)
	}
	for _, w := range p.workers {
		if w != nil {
			w.endLocked(final)
		}
	}
	p.cond.Broadcast()
	p.mu.Unlock()
	for _, j := range jobs {
		if notRun != nil {
			p.endJob(j, notRun, true)
		} else {
			p.stopJob(j, final)
		}
	}
	return final
}

// addJob registers a call's job, or says why the pool takes no more.
//
// For a Map job, it may cut the first batch for an idle worker (takeIdle):
// then the caller must send it with sendDirect.
func (p *Pool) addJob(j *job) (direct, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.notRun != nil {
		return direct{}, p.notRun
	}
	if p.state != poolRunning {
		return direct{}, p.err
	}
	p.active[j] = struct{}{}
	p.jobs = append(p.jobs, j)
	d, ok := p.takeIdle(j)
	if !ok || j.next < len(j.src) {
		// Senders have work. Not when the caller took all of it (an
		// Apply): waking them for nothing cost the round trip's CPU.
		p.cond.Broadcast()
	}
	return d, nil
}

// removeJob forgets a job whose call returned.
func (p *Pool) removeJob(j *job) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dropJob(j)
	delete(p.active, j)
	if p.state == poolClosing {
		p.cond.Broadcast() // Close waits for the calls to return
	}
}
