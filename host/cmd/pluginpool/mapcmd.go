package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/pluginpool/pluginpool/host/config"
	"github.com/pluginpool/pluginpool/host/jsonl"
	"github.com/pluginpool/pluginpool/host/pool"
	"github.com/pluginpool/pluginpool/internal/quote"
)

// mapOptions are the flags of map and apply.
type mapOptions struct {
	*globalOptions
	workers   int
	chunkSize int
	unordered bool
	stats     bool
	batching  bool // map, not apply: takes --progress and --metrics-addr
	conn      clusterOptions
}

func (o *mapOptions) addFlags(cmd *cobra.Command, batching bool) {
	f := cmd.Flags()
	o.batching = batching
	f.IntVarP(&o.workers, "workers", "w", 0, "plugin processes to start (default: the plugin's workers in the\nconfig, else one per core)")
	if batching {
		f.IntVar(&o.chunkSize, "chunk-size", 0, "items per batch (default: adaptive, a few ms of work per batch)")
		f.BoolVar(&o.unordered, "unordered", false, "write results as they complete, not in input order")
	}
	f.BoolVar(&o.stats, "stats", false, "print statistics to stderr at the end: items ok and failed, items/s,\nretries, timeouts, task latency p50/p95/p99, and per worker its tasks,\nrestarts and busy time")
	if batching {
		addProgressFlags(f, o.globalOptions)
		addMetricsFlag(f, o.globalOptions)
	}
	o.conn.addJobFlags(f)
}

// config resolves the plugin and applies the flags.
func (o *mapOptions) config(cmd *cobra.Command, name string) (pool.Config, error) {
	cfg, err := o.poolConfig(name)
	if err != nil {
		// On a cluster the workers know the plugin: this machine need
		// not have it.
		f, ferr := o.loadConfig()
		if ferr != nil || !o.conn.wanted(f) || strings.ContainsRune(name, '/') || !config.ValidName(name) {
			return cfg, err
		}
		cfg = o.finish(pool.Config{Name: name})
	}
	if cmd.Flags().Changed("workers") {
		if o.workers < 1 || o.workers > pool.WorkersLimit {
			return cfg, usageError{fmt.Errorf("--workers must be between 1 and %d, got %d", pool.WorkersLimit, o.workers)}
		}
		cfg.Workers = o.workers
	}
	if cmd.Flags().Changed("chunk-size") {
		if o.chunkSize < 1 || o.chunkSize > pool.ChunkSizeLimit {
			return cfg, usageError{fmt.Errorf("--chunk-size must be between 1 and %d, got %d", pool.ChunkSizeLimit, o.chunkSize)}
		}
		cfg.ChunkSize = o.chunkSize
	}
	return cfg, nil
}

func newMapCmd(g *globalOptions) *cobra.Command {
	o := &mapOptions{globalOptions: g}
	cmd := &cobra.Command{
		Use:   "map PLUGIN [ITEM...]",
		Short: "Run a plugin over many items, results in input order",
		Long: `Run PLUGIN over every item and write one result per line to stdout, in
input order (like Python's Pool.map).

Items come from the arguments, else from stdin, one JSON value per line
(JSON Lines; blank lines are skipped). An argument that is not valid JSON is
taken as a string: 'map double 1 x 3' passes 1, "x" and 3.

Lines a task prints come before its result. A failed item is reported on
stderr with its line number (or argument) and reason; the others still
complete, and the exit status is 1. If the plugin keeps crashing and its
pool degrades, map says why once, counts the items that were not run (the
input it never read included) from the first such line, and exits with
status 3. See 'pluginpool --help' for the other exit statuses.

PLUGIN is a name from the config file, whose [plugins.NAME] table sets its
workers, timeouts and Init config, or a path to a plugin executable
(containing a '/', e.g. ./myplugin) or Python script (e.g. double.py), run
with the defaults. A .py plugin runs with the first Python that can import
grpc and google.protobuf: $PLUGINPOOL_PYTHON, a .venv beside it, the active
virtualenv, python3 on PATH, /usr/bin/python3.

While it runs, map shows a progress bar on stderr if stderr is a terminal
(--progress, --no-progress), and serves Prometheus metrics with
--metrics-addr. --stats prints a summary at the end.

With --cluster URL, or a [cluster] table in the config (--local overrides
it), the items run on the workers of a pluginpool cluster instead
('pluginpool worker' on each machine): same output, in input order. The
workers run PLUGIN as their own pool.toml says; this machine's config only
names it and may pin it (sha256, version). Workers whose plugin differs are
named on stderr and serve none of it.`,
		Example: `  pluginpool map double 1 2 3 4 5
  pluginpool map examples/python/double.py 1 2 3 4 5
  seq 1 100000 | pluginpool map double > doubled.jsonl
  pluginpool map -w 4 printer 1 2 3 4
  pluginpool map --stats --unordered ./bin/plugins/double < numbers.jsonl
  pluginpool map --metrics-addr 127.0.0.1:9464 double < big.jsonl > out.jsonl
  PLUGINPOOL_TOKEN=... pluginpool map --cluster nats://10.0.0.1:4222 double < big.jsonl`,
		Args:              cobra.MinimumNArgs(1),
		ValidArgsFunction: completePlugin(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.runMap(cmd, args[0], args[1:])
		},
	}
	o.addFlags(cmd, true)
	return cmd
}

func newApplyCmd(g *globalOptions) *cobra.Command {
	o := &mapOptions{globalOptions: g}
	cmd := &cobra.Command{
		Use:   "apply PLUGIN ITEM",
		Short: "Run a plugin on one item",
		Long: `Run PLUGIN once on ITEM and write its result to stdout (like Python's
Pool.apply): the lines the task printed, then its value. ITEM is JSON, or a
string if it is not valid JSON. One worker is started unless -w says more.

A failed task is reported on stderr and the exit status is 1.`,
		Example: `  pluginpool apply double 21
  pluginpool apply child "Child process"`,
		Args:              cobra.ExactArgs(2),
		ValidArgsFunction: completePlugin(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("workers") {
				o.workers = 1
				cmd.Flags().Set("workers", "1")
			}
			return o.runMap(cmd, args[0], args[1:])
		},
	}
	o.addFlags(cmd, false)
	return cmd
}

// argItem turns a command-line argument into an item: JSON as is, anything
// else as a JSON string.
func argItem(s string) []byte {
	if json.Valid([]byte(s)) {
		return []byte(s)
	}
	b, _ := json.Marshal(s)
	return b
}

func (o *mapOptions) runMap(cmd *cobra.Command, name string, args []string) error {
	ctx := cmd.Context()
	var prog *progress
	if o.batching {
		// Before the pool's config: its loggers then write through the
		// bar's stderr, which wipes the bar before each line.
		total := len(args)
		if total == 0 {
			total = -1 // stdin: unknown
		}
		prog = newProgress(o.globalOptions, name, total)
		defer prog.Finish()
	}
	cfg, err := o.config(cmd, name)
	if err != nil {
		return err
	}
	metrics, err := startMetrics(o.globalOptions)
	if err != nil {
		return err
	}
	defer metrics.Close()
	var (
		items  iter.Seq[[]byte]
		where  func(i int) string
		reader *jsonl.Reader
		abort  = func() {}
	)
	if len(args) > 0 {
		// No more workers than items: each start costs a few ms.
		if cfg.Workers == 0 {
			cfg.Workers = runtime.NumCPU()
		}
		cfg.Workers = min(cfg.Workers, len(args))
		list := make([][]byte, len(args))
		for i, a := range args {
			list[i] = argItem(a)
		}
		items = slices.Values(list)
		where = func(i int) string { return fmt.Sprintf("item %d (%s)", i+1, quote.Item([]byte(args[i]))) }
	} else {
		in := o.io.In
		in, abort = abortable(in)
		// On a signal, let go of the input at once: Imap's feeder may be
		// blocked reading it, and the loop below waits for the feeder.
		defer context.AfterFunc(ctx, abort)()
		limit := cfg.MaxItemBytes
		if limit == 0 {
			limit = pool.DefaultMaxItemBytes
		}
		reader = jsonl.NewReader(in, false, limit)
		items = reader.Items()
		where = func(i int) string { return fmt.Sprintf("line %d", reader.Line(i)) }
	}

	if o.batching && cmd.Flags().Changed("workers") {
		if f, _ := o.loadConfig(); o.conn.wanted(f) {
			o.logger().Warn("-w/--workers has no effect on a cluster: each worker runs the plugin as its own pool.toml says")
		}
	}
	p, err := o.startExecutor(ctx, &o.conn, name, cfg)
	if err != nil {
		abort()
		return o.clusterError(ctx, err)
	}
	metrics.Add(p)
	began := time.Now()
	out := jsonl.NewWriter(o.io.Out)
	out.FlushEvery(outputFlush)
	defer out.Close()
	seq := p.Imap
	if o.unordered {
		seq = p.ImapUnordered
	}
	var (
		total, failed int
		notRun        = notRunCount{first: -1}
		writeErr      error
	)
	defer notRun.stop()
	for i, r := range seq(ctx, items) {
		// Checked per item, cancellation cost ~20 ns an item; failed items
		// (all of them once ctx is done) are checked before they are reported.
		if (total&1023 == 0 || r.Err != nil) && canceled(ctx) {
			abort() // the loop's exit waits for the input to let go
			break
		}
		total++
		prog.Add(1)
		if r.Err != nil {
			if errors.Is(r.Err, pool.ErrNotRun) {
				// The pool degraded: counted, and summed up once below.
				notRun.add(i, reader, abort)
				continue
			}
			failed++
			o.report(where(i), r.Err, reader, i)
		}
		if err := out.Write(r); err != nil {
			writeErr = err
			abort()
			break
		}
	}
	var (
		closeErr error
		stats    pool.Stats
	)
	if ctx.Err() == nil && writeErr == nil {
		stats = p.Stats() // while the workers are there to show
		closeErr = p.Close()
	}
	// Items the pool never took count as not run: total is what it took.
	inputItems := len(args)
	if errors.Is(closeErr, pool.ErrDegraded) && reader != nil {
		notRun.add(-1, reader, abort) // bounds counting an input that stays open
		inputItems = reader.Rest()
	}
	notRun.stop()
	abort()
	prog.Finish()
	if writeErr == nil {
		writeErr = out.Close()
	}
	switch {
	case ctx.Err() != nil:
		p.Terminate()
		return errReported
	case writeErr != nil:
		p.Terminate()
		if errors.Is(writeErr, syscall.EPIPE) {
			// stdout was closed early (| head): stop quietly, as a
			// SIGPIPE-killed process would.
			o.code = exitSignal(syscall.SIGPIPE)
			return errReported
		}
		return o.fail(ExitFailed, "writing results: %v", writeErr)
	}
	if o.stats {
		printStats(o.io.Err, stats, time.Since(began))
	}
	if errors.Is(closeErr, pool.ErrDegraded) {
		fmt.Fprintf(o.io.Err, "pluginpool: %v\n", closeErr)
		missing := max(inputItems-(total-notRun.n), 0)
		first := notRun.first
		if first < 0 || inputItems > total && total < first {
			first = total // the first item the pool never took
		}
		var also string
		if failed > 0 {
			also = fmt.Sprintf("; %d failed", failed)
		}
		if reader != nil && reader.Err() != nil {
			err := reader.Err()
			// Let go of (an idle pipe), or unreadable: a lower bound.
			return o.fail(ExitStart, "at least %d items were not run, from %s, because the pool degraded (the input was not read to its end: %v)%s", missing, where(first), err, also)
		}
		return o.fail(ExitStart, "%d of %d items were not run, from %s, because the pool degraded%s", missing, inputItems, where(first), also)
	}
	if reader != nil {
		if err := reader.Err(); err != nil {
			return o.fail(ExitFailed, "reading stdin: %v", err)
		}
	}
	if closeErr != nil {
		return o.fail(ExitStart, "%v", closeErr)
	}
	if failed > 0 {
		if total > 1 {
			return o.fail(ExitFailed, "%d of %d items failed", failed, total)
		}
		o.code = ExitFailed
		return errReported
	}
	return nil
}

// notRunCount counts the items a degraded pool did not run, for one
// summary line instead of one per item: they share one cause.
type notRunCount struct {
	n        int
	first    int // the lowest index counted; -1 before one
	stopIdle func()
}

// add counts item i (i < 0: none, only arm the idle bound). From the first
// one on, the input is let go of if it stays open with nothing to read
// (tail -f): the pool will take no more, and the summary counts the rest.
func (c *notRunCount) add(i int, r *jsonl.Reader, abort func()) {
	if c.stopIdle == nil {
		c.stopIdle = func() {}
		if r != nil {
			c.stopIdle = r.AbortWhenIdle(abort, inputIdle)
		}
	}
	if i < 0 {
		return
	}
	c.n++
	if c.first < 0 || i < c.first {
		c.first = i
	}
}

func (c *notRunCount) stop() {
	if c.stopIdle != nil {
		c.stopIdle()
	}
}

// inputIdle is how long the count of a degraded run's unread input waits
// for more of it.
const inputIdle = time.Second

// report writes one failed item to stderr.
func (o *mapOptions) report(where string, err error, r *jsonl.Reader, i int) {
	if r != nil {
		if n, ok := r.Oversize(i); ok {
			var tl *pool.TooLargeError
			if errors.As(err, &tl) {
				err = &pool.TooLargeError{Size: n, Limit: tl.Limit}
			}
		}
	}
	fmt.Fprintf(o.io.Err, "pluginpool: %s: %s\n", where, quote.Text(err.Error()))
}

// abortable returns a reader whose blocked Read can be abandoned. A read
// from a pipe or terminal blocks in the kernel and cannot be interrupted, so
// it runs on a goroutine of its own; abort makes Read return at once and
// leaves that goroutine to end with the process. Regular files never block
// and are read directly. abort is safe to call more than once, from any
// goroutine.
func abortable(r io.Reader) (io.Reader, func()) {
	if f, ok := r.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
			return r, func() {}
		}
	}
	ar := &abortReader{chunks: make(chan chunk, 2), done: make(chan struct{})}
	go ar.pump(r)
	var once sync.Once
	return ar, func() { once.Do(func() { close(ar.done) }) }
}

type chunk struct {
	b   []byte
	err error
}

type abortReader struct {
	chunks chan chunk
	done   chan struct{}
	cur    []byte
	err    error
}

func (a *abortReader) pump(r io.Reader) {
	for {
		buf := make([]byte, 256<<10)
		n, err := r.Read(buf)
		select {
		case a.chunks <- chunk{buf[:n], err}:
		case <-a.done:
			return
		}
		if err != nil {
			return
		}
	}
}

var errAborted = errors.New("input abandoned")

func (a *abortReader) Read(p []byte) (int, error) {
	for len(a.cur) == 0 {
		if a.err != nil {
			return 0, a.err
		}
		select {
		case c := <-a.chunks:
			a.cur, a.err = c.b, c.err
		case <-a.done:
			return 0, errAborted
		}
	}
	n := copy(p, a.cur)
	a.cur = a.cur[n:]
	return n, nil
}

// canceled reports whether ctx is done without taking its lock, for
// loops that check once per item.
func canceled(ctx context.Context) bool {
	select {
	case <-ctx.Done():
		return true
	default:
		return false
	}
}

// outputFlush is how long a result may sit in the output buffer: results of
// a slow or stalled input (tail -f) show up within it.
const outputFlush = 100 * time.Millisecond
