package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/pluginpool/pluginpool/host/pool"
)

// A wplugin is one plugin a worker serves: its slots, each a local
// *pool.Pool of one process, so the pool's crash, timeout and restart
// rules apply to each unchanged. A batch runs on one slot; a slot takes up
// to InFlight batches at once.
type wplugin struct {
	name string

	mu       sync.Mutex
	cond     *sync.Cond // Broadcast when a slot frees up or the slots change
	cfg      pool.Config
	slots    []*slot // serving, by index
	removed  bool    // no longer served: reservations fail
	runners  int     // jobs pulling for this plugin
	items    int64
	batches  int64
	retiring sync.WaitGroup // old slots draining before they close
}

// A slot is one single-process pool and its bookings.
type slot struct {
	index   int
	pool    *pool.Pool
	info    pool.Info
	sha256  string
	booked  int  // units reserved for a fetch or running a batch
	running int  // batches running
	retired bool // takes nothing new; closed when booked reaches 0
	drained chan struct{}
}

func (s *slot) variant() Variant {
	return Variant{Version: s.info.Version, SHA256: s.sha256, Slots: 1}
}

// startSlot starts one slot of cfg.
func startSlot(ctx context.Context, cfg pool.Config, index int) (*slot, error) {
	sum, err := pool.FileSHA256(cfg.Path)
	if err != nil {
		return nil, &pool.StartError{Plugin: cfg.Name, Path: cfg.Path, Slot: index, Err: fmt.Errorf("%w: %v", pool.ErrNotFound, err)}
	}
	one := cfg
	one.Workers = 1
	p, err := pool.Start(ctx, one)
	if err != nil {
		return nil, err
	}
	return &slot{index: index, pool: p, info: p.Info(), sha256: sum, drained: make(chan struct{})}, nil
}

// startPlugin starts cfg.Workers slots of cfg at once.
func startPlugin(ctx context.Context, cfg pool.Config) (*wplugin, error) {
	p := &wplugin{name: cfg.Name, cfg: cfg}
	p.cond = sync.NewCond(&p.mu)
	p.slots = make([]*slot, cfg.Workers)
	errs := make([]error, cfg.Workers)
	var wg sync.WaitGroup
	for i := range cfg.Workers {
		wg.Go(func() { p.slots[i], errs[i] = startSlot(ctx, cfg, i) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for _, s := range p.slots {
			if s != nil {
				s.pool.Terminate()
			}
		}
		return nil, err
	}
	return p, nil
}

// reserve books free units on slots that run the plugin as rec pins it,
// spread over the slots, at most a fair share when several jobs pull. It
// blocks until it books at least one, and returns nil when ctx is done or
// the plugin is no longer served.
func (p *wplugin) reserve(ctx context.Context, rec *jobRecord) []*slot {
	stop := context.AfterFunc(ctx, func() {
		p.mu.Lock()
		p.cond.Broadcast()
		p.mu.Unlock()
	})
	defer stop()
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		if ctx.Err() != nil || p.removed {
			return nil
		}
		free := 0
		for _, s := range p.slots {
			if !s.retired && rec.accepts(s.variant()) == "" {
				free += p.cfg.InFlight - s.booked
			}
		}
		if share := max(1, free/max(1, p.runners)); free > 0 {
			var units []*slot
			for len(units) < share {
				took := false
				for _, s := range p.slots {
					if len(units) < share && !s.retired && s.booked < p.cfg.InFlight && rec.accepts(s.variant()) == "" {
						s.booked++
						units = append(units, s)
						took = true
					}
				}
				if !took {
					break
				}
			}
			return units
		}
		p.cond.Wait()
	}
}

// serves reports whether some slot runs the plugin as rec pins it, and if
// not, why.
func (p *wplugin) serves(rec *jobRecord) (bool, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var why []string
	for _, s := range p.slots {
		r := rec.accepts(s.variant())
		if r == "" {
			return true, ""
		}
		if !slices.Contains(why, r) {
			why = append(why, r)
		}
	}
	return false, fmt.Sprint(why)
}

// start marks a booked unit of s as running a batch.
func (p *wplugin) start(s *slot) {
	p.mu.Lock()
	s.running++
	p.mu.Unlock()
}

// release returns a unit booked on s; ran says it ran a batch, which
// answered n items.
func (p *wplugin) release(s *slot, ran bool, n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s.booked--
	if ran {
		s.running--
		p.batches++
		p.items += int64(n)
	}

	if s.retired && s.booked == 0 {
		close(s.drained)
	}
	p.cond.Broadcast()
}

// record describes the plugin for the worker record.
func (p *wplugin) record() PluginInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := PluginInfo{Name: p.name, Items: p.items, Batches: p.batches}
	for _, s := range p.slots {
		if s.retired {
			continue
		}
		r.ItemNs = max(r.ItemNs, int64(s.pool.Stats().P50))
		r.Idempotent = s.info.Idempotent
		r.Capacity += p.cfg.InFlight
		r.Running += s.running
		v := s.variant()
		if i := slices.IndexFunc(r.Variants, func(x Variant) bool { return x.Version == v.Version && x.SHA256 == v.SHA256 }); i >= 0 {
			r.Variants[i].Slots++
		} else {
			r.Variants = append(r.Variants, v)
		}
	}
	return r
}

// retire takes s out of service: it takes nothing new, and its pool is
// closed (draining what it runs) once its bookings are released. Called
// with p.mu held.
func (p *wplugin) retire(s *slot) {
	if s.retired {
		return
	}
	s.retired = true
	if s.booked == 0 {
		close(s.drained)
	}
	p.retiring.Go(func() {
		<-s.drained
		s.pool.Close()
	})
	p.cond.Broadcast()
}

// replace puts a freshly started slot in place of slot i, retiring the old
// one. It returns the old slot's drained channel.
func (p *wplugin) replace(i int, s *slot) <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	old := p.slots[i]
	p.slots[i] = s
	p.retire(old)
	return old.drained
}

// degraded retires a slot whose pool degraded and starts a replacement
// restart_window later (the pool's own pace for restarts), so a plugin
// that keeps crashing on this machine is retried at a bounded rate.
func (p *wplugin) degraded(ctx context.Context, s *slot, log func(string, ...any)) {
	p.mu.Lock()
	if s.retired || p.removed {
		p.mu.Unlock()
		return
	}
	cfg, i := p.cfg, slices.Index(p.slots, s)
	p.retire(s)
	p.mu.Unlock()
	log("slot degraded; replacing it after restart_window", "plugin", p.name, "slot", s.index, "restart_window", cfg.RestartWindow)
	p.retiring.Go(func() {
		select {
		case <-ctx.Done():
			return
		case <-time.After(cfg.RestartWindow):
		}
		ns, err := startSlot(ctx, cfg, s.index)
		if err != nil {
			log("replacing a degraded slot", "plugin", p.name, "slot", s.index, "error", err)
			return
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.removed || i < 0 || i >= len(p.slots) || p.slots[i] != s {
			ns.pool.Close()
			return
		}
		p.slots[i] = ns
		p.cond.Broadcast()
	})
}

// stop takes every slot out of service and waits for them to close, or,
// with now, terminates them at once.
func (p *wplugin) stop(now bool) {
	p.mu.Lock()
	p.removed = true
	slots := slices.Clone(p.slots)
	for _, s := range slots {
		if now {
			s.pool.Terminate()
		}
		p.retire(s)
	}
	p.mu.Unlock()
	p.retiring.Wait()
}

// sameConfig reports whether a and b run the same plugin the same way
// (Logger and Stderr aside).
func sameConfig(a, b pool.Config) bool {
	return a.Path == b.Path && a.Name == b.Name && slices.Equal(a.Args, b.Args) && slices.Equal(a.Env, b.Env) &&
		string(a.PluginConfig) == string(b.PluginConfig) && a.SHA256 == b.SHA256 && a.Workers == b.Workers &&
		a.ChunkSize == b.ChunkSize && a.InFlight == b.InFlight && a.MaxItemBytes == b.MaxItemBytes &&
		a.MaxAttempts == b.MaxAttempts && a.TaskTimeout == b.TaskTimeout && a.KillGrace == b.KillGrace &&
		a.MaxRestarts == b.MaxRestarts && a.RestartWindow == b.RestartWindow &&
		a.MaxTasksPerWorker == b.MaxTasksPerWorker && a.StartTimeout == b.StartTimeout
}

// reload brings the plugin to cfg one slot at a time: each new slot is
// started before the old one is retired, and the next waits until the old
// one has answered what it held, so capacity never drops by more than a
// slot and no batch is lost. A slot that fails to start stops the reload
// there, leaving the rest as they were.
func (p *wplugin) reload(ctx context.Context, cfg pool.Config) (changed bool, err error) {
	sum, err := pool.FileSHA256(cfg.Path)
	if err != nil {
		return false, &pool.StartError{Plugin: cfg.Name, Path: cfg.Path, Err: fmt.Errorf("%w: %v", pool.ErrNotFound, err)}
	}
	p.mu.Lock()
	same := sameConfig(p.cfg, cfg)
	stale := 0
	for _, s := range p.slots {
		if s.sha256 != sum {
			stale++
		}
	}
	old := len(p.slots)
	p.mu.Unlock()
	if same && stale == 0 {
		return false, nil
	}
	for i := range cfg.Workers {
		s, err := startSlot(ctx, cfg, i)
		if err != nil {
			return true, err
		}
		if i < old {
			select {
			case <-p.replace(i, s):
			case <-ctx.Done():
				return true, ctx.Err()
			}
			continue
		}
		p.mu.Lock()
		p.slots = append(p.slots, s)
		p.cond.Broadcast()
		p.mu.Unlock()
	}
	p.mu.Lock()
	for _, s := range p.slots[cfg.Workers:] {
		p.retire(s)
	}
	p.slots = p.slots[:cfg.Workers]
	p.cfg = cfg
	p.cond.Broadcast()
	p.mu.Unlock()
	return true, nil
}
