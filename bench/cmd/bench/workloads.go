package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pluginpool/pluginpool/bench/internal/inputs"
	"github.com/pluginpool/pluginpool/bench/internal/spin"
	"github.com/pluginpool/pluginpool/host/pool"
	"github.com/pluginpool/pluginpool/internal/python"
)

type workload struct {
	id, title string
	run       func(context.Context, *bench) []Row
	timed     bool // its figures are times, which other processes disturb
}

var workloads = []workload{
	{"W1", "1M-line JSONL file through `pluginpool map double`", w1, true},
	{"W2", "library Map of 1M ints through the double plugin", w2, true},
	{"W3", "sequential Apply round trip", w3, true},
	{"W4", "CPU-bound plugin, 2 workers vs 1", w4, true},
	{"W5", "whole process `pluginpool map double 1 2 3 4 5`", w5, true},
	{"W6", "peak RSS of the CLI streaming items stdin→stdout", w6, false},
	{"W7", "1M-line JSONL file through the Python plugin examples/python/double.py", w7, true},
	{"W8", "W1's job through the cluster (server + one worker), against the local pool", w8, true},
	{"W9", "2,000 sleeping tasks through the cluster, 4 worker processes vs 1", w9, true},
}

func validWorkload(id string) bool {
	for _, w := range workloads {
		if w.id == id {
			return true
		}
	}
	return false
}

// n is the number of runs: the -runs flag, or the workload's default.
func (b *bench) n(def int) int {
	if b.runs > 0 {
		return b.runs
	}
	return def
}

func (b *bench) script(name string) string { return filepath.Join(b.pythonScripts, name) }

// plugin is how the CLI rows name the double plugin: by name, resolved
// through ./pool.toml as a user would, unless -bin points elsewhere.
func (b *bench) plugin() string {
	if b.bin == filepath.Join(b.root, "bin") {
		return "double"
	}
	return b.double
}

// needCLI and needDouble fill the pluginpool cell when bin/ is incomplete.
func (b *bench) needCLI(r *Row) bool {
	if b.cli == "" || b.double == "" {
		r.PPNote = "not built"
		r.fail("%s", b.missing)
		return false
	}
	return true
}

func (b *bench) needDouble(r *Row) bool {
	if b.double == "" {
		r.PPNote = "not built"
		r.fail("%s", b.missing)
		return false
	}
	return true
}

func (b *bench) needPython(r *Row) bool {
	if b.python == "" {
		r.PyNote = b.pyMissing
		return false
	}
	return true
}

// timeRuns runs p n times after an optional untimed warm-up (page cache,
// binary load), checking each output with check. It returns each run's
// wall time and CPU time (the process and its children) in seconds, and
// stops at the first failure.
func timeRuns(ctx context.Context, p proc, n int, warm bool, check func(result) error) (wall, cpu []float64, err error) {
	if warm {
		if _, err := p.run(ctx); err != nil {
			return nil, nil, err
		}
	}
	for range n {
		res, err := p.run(ctx)
		if err != nil {
			return wall, cpu, err
		}
		if check != nil {
			if err := check(res); err != nil {
				return wall, cpu, fmt.Errorf("%s: wrong output: %w", shortName(p.path), err)
			}
		}
		wall, cpu = append(wall, res.wall.Seconds()), append(cpu, res.cpu.Seconds())
	}
	return wall, cpu, nil
}

const w1Lines = 1_000_000

// W1: the CLI over a 1M-line file, whole process, vs the Python script and
// the no-IPC floor, all with stdin from the file and stdout to a file.
func w1(ctx context.Context, b *bench) []Row {
	r := Row{ID: "W1", What: "`pluginpool map double < 1M-line JSONL > file`, whole process wall time", Unit: "s", Target: "≤0.05 py, ≤1.5x floor"}
	out := filepath.Join(b.tmp, "w1.out")
	check := func(result) error { return verifyFile(out, w1Lines) }

	if b.needCLI(&r) {
		xs, cpu, err := timeRuns(ctx, proc{path: b.cli, args: []string{"map", b.plugin()}, dir: b.root, stdin: b.input1M, stdout: out}, b.n(5), true, check)
		if err != nil {
			r.fail("%v", err)
		}
		if len(xs) > 0 {
			r.PP = ptr(median(xs))
			r.note("pluginpool: %s; CPU (host + plugins) %s; every output verified (1M lines, line k = 2k)", spread(xs, "s"), format(median(cpu), "s"))
			r.samples("pluginpool", xs)
		}
	}
	xs, cpu, err := timeRuns(ctx, proc{path: b.floor, dir: b.root, stdin: b.input1M, stdout: out}, b.n(5), true, check)
	if err != nil {
		r.fail("floor: %v", err)
	} else {
		r.Floor = ptr(median(xs))
		r.note("floor (bench/floor: read, double, write in one process): %s; CPU %s", spread(xs, "s"), format(median(cpu), "s"))
		r.samples("floor", xs)
	}
	if b.needPython(&r) {
		xs, cpu, err := timeRuns(ctx, proc{path: b.python, args: []string{b.script("w1_jsonl.py")}, dir: b.root, stdin: b.input1M, stdout: out}, b.n(3), false, check)
		if err != nil {
			r.fail("python: %v", err)
		} else {
			r.Py = ptr(median(xs))
			r.note("python (w1_jsonl.py: json.loads, Pool().map, json.dumps): %s; CPU (all processes) %s", spread(xs, "s"), format(median(cpu), "s"))
			r.samples("python", xs)
			b.w1Python = pythonRun{exe: b.python, wall: xs, cpu: cpu}
		}
	}
	r.finish(func(r *Row) (bool, bool) {
		if r.FloorRatio != nil && *r.FloorRatio > 1.5 {
			return false, true
		}
		if r.Ratio == nil || r.FloorRatio == nil {
			return false, false
		}
		return *r.Ratio <= 0.05, true
	})
	return []Row{r}
}

const w2Items = 1_000_000

type w2Times struct {
	total, start, encode, mapped time.Duration
	hostCPU, pluginCPU           time.Duration // from Start to the end of Close
}

// rusage returns the CPU time of this process and of its waited-for
// children.
func rusage() (self, children time.Duration) {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	if syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru) == nil {
		children = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return self, children
}

// w2Once starts a 2-worker pool, encodes the items and maps them: the
// timed part. Close is not timed (Python's pool shutdown is not either).
// typed maps a []int with pool.Typed[int, int], which encodes each item
// as the pool takes it and decodes the results into a []int (W2's
// figure); otherwise the ints are encoded to [][]byte first and go
// through the raw Map (W2's note).
func w2Once(ctx context.Context, double string, env []string, typed bool) (w2Times, error) {
	runtime.GC()
	var t w2Times
	self0, children0 := rusage()
	t0 := time.Now()
	p, err := pool.Start(ctx, pool.Config{Path: double, Workers: 2, Env: env})
	if err != nil {
		return t, err
	}
	t1 := time.Now()
	var (
		items [][]byte
		xs    []int
	)
	if typed {
		xs = make([]int, w2Items)
		for i := range xs {
			xs[i] = i
		}
	} else {
		items = inputs.Ints(w2Items)
	}
	t2 := time.Now()
	var (
		rs []pool.Result
		ys []int
	)
	if typed {
		ys, err = pool.Typed[int, int](p).Map(ctx, xs)
	} else {
		rs, err = p.Map(ctx, items)
	}
	t3 := time.Now()
	t.total, t.start, t.encode, t.mapped = t3.Sub(t0), t1.Sub(t0), t2.Sub(t1), t3.Sub(t2)
	if cerr := p.Close(); err == nil {
		err = cerr
	}
	self1, children1 := rusage()
	t.hostCPU, t.pluginCPU = self1-self0, children1-children0
	if err != nil {
		return t, err
	}
	for i := range rs {
		if !isDouble(rs[i].Value, i) {
			return t, fmt.Errorf("item %d: got %q, want %d", i, rs[i].Value, 2*i)
		}
	}
	if typed && len(ys) != w2Items {
		return t, fmt.Errorf("%d results for %d items", len(ys), w2Items)
	}
	for i, y := range ys {
		if y != 2*i {
			return t, fmt.Errorf("item %d: got %d, want %d", i, y, 2*i)
		}
	}
	return t, nil
}

// w2Floor is the same job in-process: encode the items, then decode,
// double and encode each into a result slice, as the plugin would.
func w2Floor() (time.Duration, error) {
	runtime.GC()
	t0 := time.Now()
	items := inputs.Ints(w2Items)
	out := make([]byte, 0, w2Items*8)
	results := make([][]byte, len(items))
	for i, it := range items {
		v, err := strconv.ParseInt(string(it), 10, 64)
		if err != nil {
			return 0, err
		}
		start := len(out)
		out = strconv.AppendInt(out, 2*v, 10)
		results[i] = out[start:len(out):len(out)]
	}
	d := time.Since(t0)
	for i := range results {
		if !isDouble(results[i], i) {
			return 0, fmt.Errorf("floor item %d wrong", i)
		}
	}
	return d, nil
}

// startProfile starts the -cpuprofile profile, if asked for; the function
// it returns stops it.
func (b *bench) startProfile() (stop func()) {
	if b.cpuprofile == "" {
		return func() {}
	}
	f, err := os.Create(b.cpuprofile)
	if err == nil {
		err = pprof.StartCPUProfile(f)
	}
	if err != nil {
		status("-cpuprofile: %v", err)
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
		status("CPU profile of the timed W2 runs (this process: host side, verification included) in %s", b.cpuprofile)
	}
}

// W2: the library, in this process.
func w2(ctx context.Context, b *bench) []Row {
	r := Row{ID: "W2", What: "library pool.Start(2 workers) + typed Map of 1M ints (pool.Typed[int, int]), in this process (Close not timed)", Unit: "s", Target: "≤0.4 py"}
	if b.needDouble(&r) {
		// W2's figure is the typed call, what a Go program writes for
		// Python's Pool(2).map(double, range(N)); the raw Map of the same
		// ints, encoded to [][]byte first, runs alternately with it and
		// is noted.
		var m [2]struct{ tot, st, enc, mp, hcpu, pcpu []float64 }
		// One untimed run: the page cache and the first fork are not the
		// pool's steady cost.
		if _, err := w2Once(ctx, b.double, b.pluginEnv, true); err != nil {
			r.fail("%v", err)
		}
		stop := b.startProfile()
		for k := range 2 * b.n(5) {
			if r.Err != "" {
				break
			}
			typed := k%2 == 0
			t, err := w2Once(ctx, b.double, b.pluginEnv, typed)
			if err != nil {
				r.fail("%v", err)
				break
			}
			s := &m[k%2]
			s.tot, s.st, s.enc, s.mp = append(s.tot, t.total.Seconds()), append(s.st, t.start.Seconds()), append(s.enc, t.encode.Seconds()), append(s.mp, t.mapped.Seconds())
			s.hcpu, s.pcpu = append(s.hcpu, t.hostCPU.Seconds()), append(s.pcpu, t.pluginCPU.Seconds())
		}
		stop()
		if s := m[0]; len(s.tot) > 0 {
			r.PP = ptr(median(s.tot))
			r.note("pluginpool, typed (pool.Typed[int, int](p).Map(ctx, xs)): %s; of which start %s, Map %s (encoding and decoding included) (medians); results verified",
				spread(s.tot, "s"), format(median(s.st), "s"), format(median(s.mp), "s"))
			r.note("pluginpool CPU, typed, Start to Close: host %s + plugins %s (medians)", format(median(s.hcpu), "s"), format(median(s.pcpu), "s"))
			r.samples("pluginpool", s.tot)
		}
		if s := m[1]; len(s.tot) > 0 {
			r.note("pluginpool, raw (encode to [][]byte, then p.Map(ctx, items)), runs alternating with the typed ones: %s; of which start %s, encode %s, Map %s; CPU host %s + plugins %s (medians); results verified",
				spread(s.tot, "s"), format(median(s.st), "s"), format(median(s.enc), "s"), format(median(s.mp), "s"), format(median(s.hcpu), "s"), format(median(s.pcpu), "s"))
			r.samples("pluginpool raw Map", s.tot)
		}
	}
	var fl []float64
	for range b.n(5) {
		d, err := w2Floor()
		if err != nil {
			r.fail("%v", err)
			break
		}
		fl = append(fl, d.Seconds())
	}
	if len(fl) > 0 {
		r.Floor = ptr(median(fl))
		r.note("floor (encode, then parse+double+encode each item in this process): %s", spread(fl, "s"))
	}
	if b.needPython(&r) {
		var py, pycpu []float64
		for range b.n(3) {
			res, err := proc{path: b.python, args: []string{b.script("w2_map.py")}, dir: b.root}.run(ctx)
			if err != nil {
				r.fail("python: %v", err)
				break
			}
			var v struct {
				Seconds float64 `json:"seconds"`
				CPU     float64 `json:"cpu"`
			}
			if err := json.Unmarshal(res.out, &v); err != nil {
				r.fail("python: %v in %q", err, res.out)
				break
			}
			py, pycpu = append(py, v.Seconds), append(pycpu, v.CPU)
		}
		if len(py) > 0 {
			r.Py = ptr(median(py))
			r.note("python (w2_map.py: Pool(2) start + map(double, range(1_000_000)), timed inside the script): %s; CPU, start to shutdown, all processes %s", spread(py, "s"), format(median(pycpu), "s"))
		}
	}
	r.finish(func(r *Row) (bool, bool) { return r.Ratio != nil && *r.Ratio <= 0.4, r.Ratio != nil })
	return []Row{r}
}

const (
	w3Calls  = 5000
	w3Warmup = 500
)

// w3Once starts a pool and returns the p50 and p99 of w3Calls sequential
// Apply calls after w3Warmup untimed ones, in microseconds.
func w3Once(ctx context.Context, double string, env []string) (p50, p99 float64, err error) {
	p, err := pool.Start(ctx, pool.Config{Path: double, Workers: 2, Env: env})
	if err != nil {
		return 0, 0, err
	}
	defer p.Close()
	lat := make([]time.Duration, 0, w3Calls)
	var buf []byte
	for i := range w3Warmup + w3Calls {
		buf = strconv.AppendInt(buf[:0], int64(i), 10)
		t0 := time.Now()
		res, err := p.Apply(ctx, buf)
		d := time.Since(t0)
		if err != nil {
			return 0, 0, err
		}
		if !isDouble(res.Value, i) {
			return 0, 0, fmt.Errorf("Apply(%d) = %q", i, res.Value)
		}
		if i >= w3Warmup {
			lat = append(lat, d)
		}
	}
	slices.Sort(lat)
	pct := func(q float64) float64 {
		return float64(lat[min(len(lat)-1, int(q*float64(len(lat))))]) / 1e3
	}
	return pct(0.50), pct(0.99), nil
}

// W3: sequential Apply latency, in this process.
func w3(ctx context.Context, b *bench) []Row {
	what := fmt.Sprintf("sequential Apply round trip, %d calls after %d warm-up, 2 workers; Python: Pool().apply", w3Calls, w3Warmup)
	r50 := Row{ID: "W3 p50", What: what, Unit: "µs", Target: "≤35 µs"}
	r99 := Row{ID: "W3 p99", What: "the same calls, 99th percentile", Unit: "µs", Target: "≤100 µs"}
	if b.needDouble(&r50) {
		var a, c []float64
		for range b.n(3) {
			p50, p99, err := w3Once(ctx, b.double, b.pluginEnv)
			if err != nil {
				r50.fail("%v", err)
				break
			}
			a, c = append(a, p50), append(c, p99)
		}
		if len(a) > 0 {
			r50.PP, r99.PP = ptr(median(a)), ptr(median(c))
			r50.note("pluginpool p50: %s (one fresh pool per run)", spread(a, "µs"))
			r99.note("pluginpool p99: %s", spread(c, "µs"))
		}
	} else {
		r99.PPNote = r50.PPNote
	}
	if b.needPython(&r50) {
		var a, c []float64
		for range b.n(3) {
			res, err := proc{path: b.python, args: []string{b.script("w3_apply.py"), strconv.Itoa(w3Calls), strconv.Itoa(w3Warmup)}, dir: b.root}.run(ctx)
			if err != nil {
				r50.fail("python: %v", err)
				break
			}
			var v struct {
				P50 float64 `json:"p50_us"`
				P99 float64 `json:"p99_us"`
			}
			if err := json.Unmarshal(res.out, &v); err != nil {
				r50.fail("python: %v in %q", err, res.out)
				break
			}
			a, c = append(a, v.P50), append(c, v.P99)
		}
		if len(a) > 0 {
			r50.Py, r99.Py = ptr(median(a)), ptr(median(c))
			r50.note("python p50: %s", spread(a, "µs"))
			r99.note("python p99: %s", spread(c, "µs"))
		}
	} else {
		r99.PyNote = r50.PyNote
	}
	r50.finish(func(r *Row) (bool, bool) { return *r.PP <= 35, true })
	r99.finish(func(r *Row) (bool, bool) { return *r.PP <= 100, true })
	return []Row{r50, r99}
}

const (
	w4Items    = 300
	w4TargetMs = 2.0
)

// calibrateSpin finds the iteration count for which spin.Spin takes about
// ms milliseconds here: the fastest of several timings of 20 ms or more.
func calibrateSpin(ms float64) uint64 {
	iters := uint64(100_000)
	for {
		best := time.Duration(1 << 62)
		for range 5 {
			t0 := time.Now()
			spinSink += spin.Spin(1, iters)
			best = min(best, time.Since(t0))
		}
		if best > 20*time.Millisecond {
			return max(1, uint64(float64(iters)*ms/1e3/best.Seconds()))
		}
		iters *= 2
	}
}

// spinSink keeps calibrateSpin's calls from being optimized away.
var spinSink uint64

// w4Maps starts a pool of workers and times runs Maps of the items after
// a warm-up Map.
func w4Maps(ctx context.Context, spinPath string, env []string, iters uint64, workers, runs int) ([]float64, error) {
	p, err := pool.Start(ctx, pool.Config{Path: spinPath, Workers: workers, Env: env, PluginConfig: fmt.Appendf(nil, `{"iters": %d}`, iters)})
	if err != nil {
		return nil, err
	}
	defer p.Close()
	items := inputs.Ints(w4Items)
	if _, err := p.Map(ctx, items[:4*workers]); err != nil {
		return nil, err
	}
	want := strconv.FormatUint(spin.Spin(uint64(w4Items-1), iters), 10)
	var xs []float64
	for range runs {
		t0 := time.Now()
		rs, err := p.Map(ctx, items)
		d := time.Since(t0)
		if err != nil {
			return xs, err
		}
		if got := string(rs[w4Items-1].Value); got != want {
			return xs, fmt.Errorf("spin(%d) = %s, want %s", w4Items-1, got, want)
		}
		xs = append(xs, d.Seconds())
	}
	return xs, nil
}

// W4: how a CPU-bound plugin scales from 1 to 2 workers.
func w4(ctx context.Context, b *bench) []Row {
	r := Row{ID: "W4", What: fmt.Sprintf("speed-up of Map with 2 workers over 1, %d CPU-bound items of ~%.0f ms (bench/plugins/spin); Map timed, pool started and warmed", w4Items, w4TargetMs), Unit: "x", Target: "≥1.9x"}
	iters := calibrateSpin(w4TargetMs)
	one, err := w4Maps(ctx, b.spin, b.pluginEnv, iters, 1, b.n(3))
	if err == nil {
		var two []float64
		two, err = w4Maps(ctx, b.spin, b.pluginEnv, iters, 2, b.n(3))
		if err == nil {
			r.PP = ptr(median(one) / median(two))
			r.note("pluginpool: %d iterations per item (%.2f ms per item with 1 worker); 1 worker %s; 2 workers %s", iters, median(one)/w4Items*1e3, spread(one, "s"), spread(two, "s"))
		}
	}
	if err != nil {
		r.fail("%v", err)
	}
	if b.needPython(&r) {
		res, err := proc{path: b.python, args: []string{b.script("w4_spin.py"), strconv.Itoa(w4Items), fmt.Sprint(w4TargetMs), strconv.Itoa(b.n(3))}, dir: b.root}.run(ctx)
		var v struct {
			Iters  int       `json:"iters"`
			ItemMs float64   `json:"item_ms"`
			One    []float64 `json:"one"`
			Two    []float64 `json:"two"`
		}
		if err == nil {
			err = json.Unmarshal(res.out, &v)
		}
		if err != nil {
			r.fail("python: %v", err)
		} else {
			r.Py = ptr(median(v.One) / median(v.Two))
			r.note("python (w4_spin.py, the same loop, %d iterations per item (%.2f ms per item in Pool(1)); map with default chunksize: Pool(1) %s; Pool(2) %s", v.Iters, median(v.One)/w4Items*1e3, spread(v.One, "s"), spread(v.Two, "s"))
		}
	}
	r.finish(func(r *Row) (bool, bool) { return *r.PP >= 1.9, true })
	return []Row{r}
}

// W5: the seed's example, whole process.
func w5(ctx context.Context, b *bench) []Row {
	r := Row{ID: "W5", What: "whole process: `pluginpool map double 1 2 3 4 5` vs the interpreter running the seed's Pool(processes=3).map", Unit: "s", Target: "≤0.25 py"}
	if b.needCLI(&r) {
		check := func(res result) error {
			if got := strings.Fields(string(res.out)); !slices.Equal(got, []string{"2", "4", "6", "8", "10"}) {
				return fmt.Errorf("printed %q", res.out)
			}
			return nil
		}
		xs, _, err := timeRuns(ctx, proc{path: b.cli, args: []string{"map", b.plugin(), "1", "2", "3", "4", "5"}, dir: b.root}, b.n(15), true, check)
		if err != nil {
			r.fail("%v", err)
		}
		if len(xs) > 0 {
			r.PP = ptr(median(xs))
			r.note("pluginpool: %s", spread(xs, "s"))
		}
	}
	if b.needPython(&r) {
		check := func(res result) error {
			if got := strings.TrimSpace(string(res.out)); got != "[2, 4, 6, 8, 10]" {
				return fmt.Errorf("printed %q", got)
			}
			return nil
		}
		xs, _, err := timeRuns(ctx, proc{path: b.python, args: []string{b.script("seed_pool.py")}, dir: b.root}, b.n(15), true, check)
		if err != nil {
			r.fail("python: %v", err)
		}
		if len(xs) > 0 {
			r.Py = ptr(median(xs))
			r.note("python (%s seed_pool.py, the interpreter binary, not a shim): %s", b.python, spread(xs, "s"))
		}
	}
	r.finish(func(r *Row) (bool, bool) { return r.Ratio != nil && *r.Ratio <= 0.25, r.Ratio != nil })
	return []Row{r}
}

type streamResult struct {
	wall   time.Duration
	maxRSS int64 // wait4's ru_maxrss: the largest of the process and its waited-for children
	hwm    int64 // the process's own VmHWM, last read before it exited
}

// stream runs path args with n generated items piped to its stdin, checks
// every output line, and reports its peak RSS.
//
// It runs the process through a copy of this program (rssHelper): a
// child's ru_maxrss starts from its parent's RSS at the fork (Go forks
// with CLONE_VM, and exec keeps the old high-water mark), and this
// program's RSS, after W2's million results, would swamp the figure.
func stream(ctx context.Context, dir, path string, args []string, n int) (streamResult, error) {
	var sr streamResult
	self, err := os.Executable()
	if err != nil {
		return sr, err
	}
	report, reportW, err := os.Pipe()
	if err != nil {
		return sr, err
	}
	defer report.Close()
	cmd := exec.CommandContext(ctx, self, append([]string{path}, args...)...)
	cmd.Env = append(os.Environ(), rssHelperEnv+"=1")
	cmd.ExtraFiles = []*os.File{reportW}
	cmd.Dir = dir
	stderr := &tailBuffer{max: 2048}
	cmd.Stderr = stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return sr, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return sr, err
	}
	t0 := time.Now()
	err = cmd.Start()
	reportW.Close()
	if err != nil {
		return sr, err
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		w := bufio.NewWriterSize(stdin, 64<<10)
		if genInts(w, n) == nil {
			w.Flush()
		}
		stdin.Close()
	}()
	var rep rssReport
	var repErr error
	go func() {
		defer wg.Done()
		repErr = json.NewDecoder(report).Decode(&rep)
	}()
	verr := verifyDoubled(stdout, n)
	if verr != nil {
		io.Copy(io.Discard, stdout)
	}
	err = cmd.Wait()
	wg.Wait()
	sr.wall = time.Since(t0)
	switch {
	case err != nil:
		return sr, fmt.Errorf("%s: %v%s", shortName(path), err, stderr.String())
	case verr != nil:
		return sr, fmt.Errorf("%s: wrong output: %w", shortName(path), verr)
	case repErr != nil:
		return sr, fmt.Errorf("%s: no RSS report: %v", shortName(path), repErr)
	}
	sr.maxRSS, sr.hwm = rep.MaxRSS, rep.HWM
	return sr, nil
}

// rssHelperEnv, when set, makes this program the rssHelper.
const rssHelperEnv = "PLUGINPOOL_BENCH_RSS_HELPER"

type rssReport struct {
	MaxRSS int64 `json:"maxrss"` // bytes
	HWM    int64 `json:"hwm"`    // bytes
}

// rssHelper runs os.Args[1:] with this process's stdin, stdout and stderr,
// polls its VmHWM, and writes an rssReport to fd 3 when it exits. It exits
// with the command's status.
func rssHelper() int {
	cmd := exec.Command(os.Args[1], os.Args[2:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var rep rssReport
	done := make(chan struct{})
	polled := make(chan struct{})
	go func() { // VmHWM is a high-water mark: the last reading is the peak so far
		defer close(polled)
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			if v := vmHWM(cmd.Process.Pid); v > 0 {
				rep.HWM = v
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	err := cmd.Wait()
	close(done)
	<-polled
	rep.MaxRSS = maxRSS(cmd.ProcessState)
	json.NewEncoder(os.NewFile(3, "report")).Encode(rep)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		if code := cmd.ProcessState.ExitCode(); code > 0 {
			return code
		}
		return 1
	}
	return 0
}

// vmHWM reads a process's peak resident set size from /proc, in bytes.
func vmHWM(pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range bytes.Split(data, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("VmHWM:")); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(string(v)), " kB"), 10, 64)
			if err == nil {
				return kb * 1024
			}
		}
	}
	return 0
}

const mib = 1 << 20

// W6: the CLI's memory stays flat however long the input.
func w6(ctx context.Context, b *bench) []Row {
	sizes := []int{5_000_000, 1_000_000}
	rows := make([]Row, len(sizes))
	for i, n := range sizes {
		r := &rows[i]
		*r = Row{ID: fmt.Sprintf("W6 %dM", n/1_000_000), Unit: "MiB", Target: "≤64 MiB, flat",
			What: fmt.Sprintf("peak RSS (wait4 ru_maxrss, host and plugins) of `pluginpool map double`, %d items piped stdin→stdout, output verified", n)}
		if !b.needCLI(r) {
			continue
		}
		var rss, hwm, wall []float64
		for range b.n(3) {
			sr, err := stream(ctx, b.root, b.cli, []string{"map", b.plugin()}, n)
			if err != nil {
				r.fail("%v", err)
				break
			}
			rss, hwm, wall = append(rss, float64(sr.maxRSS)/mib), append(hwm, float64(sr.hwm)/mib), append(wall, sr.wall.Seconds())
		}
		if len(rss) > 0 {
			r.PP = ptr(median(rss))
			r.note("pluginpool: %s; host alone (VmHWM): median %s; wall %s", spread(rss, "MiB"), format(median(hwm), "MiB"), spread(wall, "s"))
		}
	}
	// Python's streaming form at 1M only: at ~5 µs an item, 5M would take
	// most of the bench's time budget.
	if r := &rows[len(rows)-1]; b.needPython(r) {
		sr, err := stream(ctx, b.root, b.python, []string{b.script("w6_stream.py")}, 1_000_000)
		if err != nil {
			r.fail("python: %v", err)
		} else {
			r.Py = ptr(float64(sr.maxRSS) / mib)
			r.note("python (w6_stream.py: Pool().imap(chunksize=1000) over a generator, one run): peak RSS %s (own VmHWM %s), wall %s",
				format(float64(sr.maxRSS)/mib, "MiB"), format(float64(sr.hwm)/mib, "MiB"), format(sr.wall.Seconds(), "s"))
		}
	}
	rows[0].PyNote = "— (1M only)"
	flat := rows[0].PP != nil && rows[1].PP != nil && *rows[0].PP <= *rows[1].PP*1.25+4
	for i := range rows {
		rows[i].finish(func(r *Row) (bool, bool) { return *r.PP <= 64 && (i > 0 || flat), true })
	}
	if rows[0].PP != nil && rows[1].PP != nil {
		rows[0].note("flat: 5M peak %s vs 1M peak %s (%s)", format(*rows[0].PP, "MiB"), format(*rows[1].PP, "MiB"), map[bool]string{true: "flat", false: "GROWS with input"}[flat])
	}
	return rows
}

// W7: W1's file through the Python plugin examples/python/double.py (the
// seed's process_task, served by the Python SDK), whole process, against
// W1's Python script run by the same interpreter the plugin runs with. If
// W1 measured the script with that interpreter in this run, its figures are
// used; otherwise W7 measures it.
func w7(ctx context.Context, b *bench) []Row {
	r := Row{ID: "W7", What: "`pluginpool map examples/python/double.py < 1M-line JSONL > file` vs w1_jsonl.py, same interpreter", Unit: "s", Target: "≤0.3 py"}
	py, err := python.Find(ctx, filepath.Join(b.root, "examples", "python"))
	if err != nil {
		r.PPNote, r.PyNote = "no Python with grpc", "—"
		r.note("W7 skipped: %v", err)
		return []Row{r}
	}
	r.note("interpreter: %s (Python %s), for the plugin and the script", py.Executable, py.Version)
	out := filepath.Join(b.tmp, "w7.out")
	check := func(result) error { return verifyFile(out, w1Lines) }
	if b.needCLI(&r) {
		plugin := filepath.Join("examples", "python", "double.py")
		xs, cpu, err := timeRuns(ctx, proc{path: b.cli, args: []string{"map", plugin}, dir: b.root, stdin: b.input1M, stdout: out}, b.n(5), true, check)
		if err != nil {
			r.fail("%v", err)
		}
		if len(xs) > 0 {
			r.PP = ptr(median(xs))
			r.note("pluginpool: %s; CPU (host + plugins) %s; every output verified", spread(xs, "s"), format(median(cpu), "s"))
			r.samples("pluginpool", xs)
		}
	}
	if pr := b.w1Python; pr.exe != "" && sameFile(pr.exe, py.Executable) {
		r.Py = ptr(median(pr.wall))
		r.note("python: W1's runs of w1_jsonl.py in this bench run: %s; CPU %s", spread(pr.wall, "s"), format(median(pr.cpu), "s"))
		r.samples("python", pr.wall)
	} else {
		xs, cpu, err := timeRuns(ctx, proc{path: py.Executable, args: []string{b.script("w1_jsonl.py")}, dir: b.root, stdin: b.input1M, stdout: out}, b.n(3), false, check)
		if err != nil {
			r.fail("python: %v", err)
		} else {
			r.Py = ptr(median(xs))
			r.note("python (w1_jsonl.py, run by the plugin's interpreter; W1 used %s): %s; CPU (all processes) %s", orNone(b.python), spread(xs, "s"), format(median(cpu), "s"))
			r.samples("python", xs)
		}
	}
	r.finish(func(r *Row) (bool, bool) {
		if r.Ratio == nil {
			return false, false
		}
		return *r.Ratio <= 0.3, true
	})
	return []Row{r}
}

// pythonRun is W1's measurement of its Python script, for W7.
type pythonRun struct {
	exe       string
	wall, cpu []float64
}

func sameFile(a, b string) bool {
	sa, err1 := os.Stat(a)
	sb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
