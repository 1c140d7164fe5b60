package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/pluginpool/pluginpool/host/cluster"
)

// rig is a `pluginpool server` and its `pluginpool worker`s, all on this
// machine, for W8 and W9.
type rig struct {
	b     *bench
	url   string
	cfg   string // the workers' pool.toml
	procs []*exec.Cmd
}

// startRig starts a server on a free loopback port, with its store in the
// bench's temporary directory.
func (b *bench) startRig(ctx context.Context, name string) (*rig, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	dir := filepath.Join(b.tmp, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	r := &rig{b: b, url: "nats://" + addr, cfg: filepath.Join(dir, "pool.toml")}
	toml := fmt.Sprintf("[plugins.double]\npath = %q\n\n[plugins.sleep]\npath = %q\n", b.double, b.sleep)
	if err := os.WriteFile(r.cfg, []byte(toml), 0o644); err != nil {
		return nil, err
	}
	if err := r.start(ctx, "server", "--listen", addr, "--store", filepath.Join(dir, "store")); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *rig) start(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, r.b.cli, args...)
	cmd.Dir = filepath.Dir(r.cfg)
	cmd.Stderr = &tailBuffer{max: 4096}
	if err := cmd.Start(); err != nil {
		return err
	}
	r.procs = append(r.procs, cmd)
	return nil
}

// workers starts n more `pluginpool worker` processes with args and waits
// until the registry has want workers.
func (r *rig) workers(ctx context.Context, n, want int, args ...string) error {
	for range n {
		if err := r.start(ctx, append([]string{"worker", "-c", r.cfg, "--connect", r.url}, args...)...); err != nil {
			return err
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		ws, err := cluster.ListWorkers(lctx, cluster.NATS{URL: r.url})
		cancel()
		if err == nil && len(ws) == want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d workers joined within 60s (%v)%s", len(ws), want, err, r.stderr())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (r *rig) stderr() string {
	s := ""
	for _, c := range r.procs {
		s += c.Stderr.(*tailBuffer).String()
	}
	return s
}

// close drains the workers (SIGTERM), then stops the server.
func (r *rig) close() {
	for i := len(r.procs) - 1; i >= 0; i-- {
		c := r.procs[i]
		c.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { c.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			c.Process.Kill()
			<-done
		}
	}
}

// W8: W1's job through the cluster, against the local pool, same run.
func w8(ctx context.Context, b *bench) []Row {
	r := Row{ID: "W8", Unit: "s", Target: "≤1.5x local",
		What: "W1's job through `pluginpool server` + one `pluginpool worker` (one process per core) on this machine: `pluginpool map --cluster URL double < 1M-line JSONL > file`, whole host process; floor column: the local pool, `pluginpool map double`, same run"}
	mem := Row{ID: "W8 5M", Unit: "MiB", Target: "≤64 MiB, flat",
		What: "peak RSS of the host (`pluginpool map --cluster URL double`) streaming 5,000,000 items stdin→stdout through the cluster, output verified"}
	if !b.needCLI(&r) || !b.needCLI(&mem) {
		return []Row{r, mem}
	}
	rg, err := b.startRig(ctx, "w8")
	if err == nil {
		defer rg.close()
		err = rg.workers(ctx, 1, 1, "--plugins", "double")
	}
	if err != nil {
		r.fail("%v", err)
		return []Row{r, mem}
	}
	out := filepath.Join(b.tmp, "w8.out")
	check := func(result) error { return verifyFile(out, w1Lines) }
	local, lcpu, err := timeRuns(ctx, proc{path: b.cli, args: []string{"map", b.plugin()}, dir: b.root, stdin: b.input1M, stdout: out}, b.n(5), true, check)
	if err != nil {
		r.fail("local: %v", err)
	}
	before := treeCPU(os.Getpid())
	xs, hcpu, err := timeRuns(ctx, proc{path: b.cli, args: []string{"map", "--cluster", rg.url, "double"}, dir: b.root, stdin: b.input1M, stdout: out}, b.n(5), true, check)
	rigCPU := (treeCPU(os.Getpid()) - before).Seconds() / float64(len(xs)+1)
	if err != nil {
		r.fail("cluster: %v", err)
	}
	if len(xs) > 0 && len(local) > 0 {
		r.PP, r.Floor = ptr(median(xs)), ptr(median(local))
		r.note("cluster: %s; CPU: host %s, server + worker + its plugins ~%s a run; every output verified", spread(xs, "s"), format(median(hcpu), "s"), format(rigCPU, "s"))
		r.note("local pool (the floor column here): %s; CPU (host + plugins) %s", spread(local, "s"), format(median(lcpu), "s"))
		r.samples("cluster", xs)
		r.samples("local", local)
	}
	r.PyNote = "—"
	r.finish(func(r *Row) (bool, bool) { return r.FloorRatio != nil && *r.FloorRatio <= 1.5, r.FloorRatio != nil })

	var peaks []float64
	for _, n := range []int{5_000_000, 1_000_000} {
		sr, err := stream(ctx, b.root, b.cli, []string{"map", "--cluster", rg.url, "double"}, n)
		if err != nil {
			mem.fail("%v", err)
			break
		}
		peaks = append(peaks, float64(sr.maxRSS)/mib)
		mem.note("%dM items: host peak RSS %s (VmHWM %s), wall %s", n/1_000_000, format(float64(sr.maxRSS)/mib, "MiB"), format(float64(sr.hwm)/mib, "MiB"), format(sr.wall.Seconds(), "s"))
	}
	mem.PyNote = "—"
	if len(peaks) == 2 {
		mem.PP = ptr(peaks[0])
		flat := peaks[0] <= peaks[1]*1.25+4
		mem.note("flat: 5M peak %s vs 1M peak %s (%s)", format(peaks[0], "MiB"), format(peaks[1], "MiB"), map[bool]string{true: "flat", false: "GROWS with input"}[flat])
		mem.finish(func(r *Row) (bool, bool) { return *r.PP <= 64 && flat, true })
	}
	return []Row{r, mem}
}

const (
	w9Items = 2000
	w9Sleep = 10 * time.Millisecond
)

// W9: how a job's throughput scales with worker processes when the tasks
// wait rather than compute.
func w9(ctx context.Context, b *bench) []Row {
	r := Row{ID: "W9", Unit: "x", Target: "≥3.6x",
		What: fmt.Sprintf("speed-up of `pluginpool map --cluster URL sleep` over %d tasks of %s (bench/plugins/sleep), 4 worker processes (-w 2 each) vs 1, all on this machine; job wall time, workers started and warmed", w9Items, w9Sleep)}
	r.PyNote = "—"
	if !b.needCLI(&r) {
		return []Row{r}
	}
	in := filepath.Join(b.tmp, "w9.jsonl")
	out := filepath.Join(b.tmp, "w9.out")
	rg, err := b.startRig(ctx, "w9")
	if err == nil {
		defer rg.close()
		err = writeInts(in, w9Items)
	}
	check := func(result) error { return verifyFile(out, w9Items) }
	job := proc{path: b.cli, args: []string{"map", "--cluster", rg.url, "sleep"}, dir: b.root, stdin: in, stdout: out}
	var one, four []float64
	if err == nil {
		err = rg.workers(ctx, 1, 1, "-w", "2", "--plugins", "sleep")
	}
	if err == nil {
		one, _, err = timeRuns(ctx, job, b.n(2), true, check)
	}
	if err == nil {
		err = rg.workers(ctx, 3, 4, "-w", "2", "--plugins", "sleep")
	}
	if err == nil {
		four, _, err = timeRuns(ctx, job, b.n(2), true, check)
	}
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return []Row{r}
		}
		r.fail("%v", err)
	}
	if len(one) > 0 && len(four) > 0 {
		r.PP = ptr(median(one) / median(four))
		ideal := float64(w9Items) * w9Sleep.Seconds()
		r.note("1 worker (2 processes): %s (ideal %s); 4 workers (8 processes): %s (ideal %s); outputs verified",
			spread(one, "s"), format(ideal/2, "s"), spread(four, "s"), format(ideal/8, "s"))
	}
	r.finish(func(r *Row) (bool, bool) { return *r.PP >= 3.6, true })
	return []Row{r}
}
