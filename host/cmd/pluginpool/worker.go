package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/pluginpool/pluginpool/host/cluster"
	"github.com/pluginpool/pluginpool/host/config"
	"github.com/pluginpool/pluginpool/host/pool"
	"github.com/pluginpool/pluginpool/host/settings"
	"github.com/pluginpool/pluginpool/internal/quote"
)

// workerOptions are the flags of worker.
type workerOptions struct {
	*globalOptions
	conn     clusterOptions
	plugins  []string
	settings *settingFlags // -w/--workers
}

func newWorkerCmd(g *globalOptions) *cobra.Command {
	o := &workerOptions{globalOptions: g}
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Serve this machine's plugins to a pluginpool cluster",
		Long: `Serve the plugins of the config file to the jobs of a pluginpool cluster:
each plugin as one process per core (its workers setting, or -w), each
process taking up to in_flight batches at once. Jobs come from 'map', 'apply'
and 'run' with --cluster on any machine; a job runs here only if this
machine's plugin of that name is what the job's host pins (sha256 in its
pool.toml, version): otherwise the host names this worker as refused.

The token comes from $PLUGINPOOL_TOKEN ('pluginpool server' prints it), or
log in with --credentials or --nkey; --connect defaults to [cluster] url.

The worker is a daemon. It logs with hclog on stderr (--log-level, default
info; --log-json), serves Prometheus metrics with --metrics-addr, and
reaps the jobs of hosts that went silent. Signals:
  SIGTERM, SIGINT  drain: finish and answer the batches held, take no new
                   ones, leave the registry, exit 0; a second one stops now
                   (idempotent plugins' batches go straight back to the queue)
  SIGHUP           reload the config and the plugin executables: changed
                   plugins are replaced one slot at a time, no batch lost`,
		Example: `  PLUGINPOOL_TOKEN=... pluginpool worker --connect nats://10.0.0.1:4222
  pluginpool worker --plugins double,printer -w 4 --metrics-addr 0.0.0.0:9464
  kill -HUP "$WORKER_PID"    # after rebuilding a plugin or editing pool.toml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			g.daemonLogLevel(cmd)
			return o.run(cmd)
		},
	}
	f := cmd.Flags()
	o.conn.addConnFlags(f, "connect", "the cluster's NATS `URL` (default: [cluster] url, else "+cluster.DefaultURL+")")
	f.StringSliceVar(&o.plugins, "plugins", nil, "serve only these configured `PLUGINS`, comma-separated (default: all)")
	o.settings = addSettingFlags(f, settings.Pool, []string{"workers"},
		map[string]string{"workers": "processes per plugin (default: each plugin's workers, else one per core)"})
	addMetricsFlag(f, g)
	return cmd
}

// pluginConfigs returns the configs of the plugins to serve.
func (o *workerOptions) pluginConfigs(cmd *cobra.Command, f *config.File) ([]pool.Config, error) {
	names := o.plugins
	if len(names) == 0 {
		for n := range f.Plugins {
			names = append(names, n)
		}
	}
	sorted(names)
	if len(names) == 0 {
		return nil, usageError{fmt.Errorf("%s has no [plugins.NAME] table: nothing to serve", f.Path)}
	}
	cfgs := make([]pool.Config, 0, len(names))
	for _, n := range names {
		cfg, err := f.PoolConfig(n)
		if err != nil {
			return nil, usageError{err}
		}
		if err := o.settings.apply(&cfg); err != nil {
			return nil, err
		}
		cfgs = append(cfgs, o.finish(cfg))
	}
	return cfgs, nil
}

func (o *workerOptions) run(cmd *cobra.Command) error {
	daemonMemory()
	ctx := cmd.Context()
	f, err := config.Load(o.configPath)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) && !errors.Is(err, config.ErrInvalid) {
			return usageError{fmt.Errorf("%w; a worker serves the plugins of a config file: pass -c FILE", err)}
		}
		return o.configProblems(err)
	}
	cfgs, err := o.pluginConfigs(cmd, f)
	if err != nil {
		return err
	}
	metrics, err := startMetrics(o.globalOptions)
	if err != nil {
		return err
	}
	defer metrics.Close()
	// Signals are the worker's own from here: the first SIGTERM drains,
	// it does not cancel (Main's ctx is for the start only).
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	log := o.logger()
	n, err := o.conn.nats(f)
	if err != nil {
		return err
	}
	w, err := cluster.StartWorker(ctx, cluster.WorkerConfig{NATS: n, Plugins: cfgs, Logger: log})
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped by Main's caller before it started: nothing to drain
		}
		return err
	}
	metrics.AddSet(w.PluginStats)
	metrics.Register(newWorkerCollector(w))

	drainCtx, terminate := context.WithCancel(context.WithoutCancel(ctx))
	defer terminate()
	drained := make(chan error, 1)
	reloaded := make(chan struct{}, 1)
	draining, reloading := false, false
	done := ctx.Done() // a caller of Main that cancels: drain, as on SIGTERM
	for {
		select {
		case <-done:
			done = nil
			if !draining {
				draining = true
				go func() { drained <- w.Drain(drainCtx) }()
			}
		case s := <-sigs:
			switch {
			case s == syscall.SIGHUP && reloading:
				log.Warn("reload already in progress; ignoring SIGHUP")
			case s == syscall.SIGHUP && !draining:
				reloading = true
				go func() {
					o.reload(cmd, w)
					reloaded <- struct{}{}
				}()
			case s == syscall.SIGHUP:
			case !draining:
				draining = true
				log.Info("signal: draining; send it again to stop at once", "signal", s)
				go func() { drained <- w.Drain(drainCtx) }()
			default:
				log.Info("signal: stopping now", "signal", s)
				terminate()
			}
		case <-reloaded:
			reloading = false
		case err := <-drained:
			if reloading {
				<-reloaded
			}
			if err != nil {
				return exitf(ExitFailed, "%v", err)
			}
			return nil
		}
	}
}

// reload re-reads the config and brings the worker's plugins to it.
func (o *workerOptions) reload(cmd *cobra.Command, w *cluster.Worker) {
	log := o.logger()
	log.Info("SIGHUP: reloading", "config", o.configPath)
	f, err := config.Load(o.configPath)
	if err != nil {
		log.Error("reload: the config has problems; keeping the running plugins", "error", err)
		return
	}
	cfgs, err := o.pluginConfigs(cmd, f)
	if err != nil {
		log.Error("reload: keeping the running plugins", "error", err)
		return
	}
	began := time.Now()
	if err := w.Reload(context.WithoutCancel(cmd.Context()), cfgs); err != nil {
		log.Error("reload: some plugins kept their old slots", "error", err)
		return
	}
	log.Info("reload: done", "took", time.Since(began).Round(time.Millisecond))
}

func newWorkersCmd(g *globalOptions) *cobra.Command {
	var (
		conn   clusterOptions
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "workers",
		Short: "List a cluster's live workers, their plugins and load",
		Long: `List the live workers of a pluginpool cluster, one per line, to stdout:

  WORKER  HOST  PID  STATE  JOBS  LOAD  PLUGINS

LOAD is batches running / batches the worker takes at once; PLUGINS lists
each plugin as NAME VERSION sha256:PREFIX (and how many processes run each
build, during a rolling reload). A worker killed without leaving drops out
of the list within 10s. --json prints the records as JSON instead.`,
		Example: `  pluginpool workers --cluster nats://10.0.0.1:4222
  pluginpool workers --json | jq '.[].plugins'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			f, err := g.loadConfig()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			n, err := conn.nats(f)
			if err != nil {
				return err
			}
			ws, err := cluster.ListWorkers(ctx, n)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(g.io.Out)
				enc.SetIndent("", "  ")
				if ws == nil {
					ws = []cluster.WorkerInfo{}
				}
				return enc.Encode(ws)
			}
			printWorkers(g, ws)
			return nil
		},
	}
	conn.addConnFlags(cmd.Flags(), "cluster", "the cluster's NATS `URL` (default: [cluster] url, else "+cluster.DefaultURL+")")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the worker records as JSON")
	return cmd
}

func printWorkers(g *globalOptions, ws []cluster.WorkerInfo) {
	if len(ws) == 0 {
		fmt.Fprintln(g.io.Err, "pluginpool: no live workers")
		return
	}
	tw := tabwriter.NewWriter(g.io.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "WORKER\tHOST\tPID\tSTATE\tJOBS\tLOAD\tPLUGINS")
	for _, w := range ws {
		state := "serving"
		if w.Draining {
			state = "draining"
		}
		running, capacity := 0, 0
		var plugins []string
		for _, p := range w.Plugins {
			running += p.Running
			capacity += p.Capacity
			for _, v := range p.Variants {
				s := fmt.Sprintf("%s %s sha256:%s", p.Name, v.Version, prefix(v.SHA256, 12))
				if len(p.Variants) > 1 {
					s += fmt.Sprintf(" (%d)", v.Slots)
				}
				plugins = append(plugins, s)
			}
		}
		slices.Sort(plugins)
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%d/%d\t%s\n", cell(w.ID), cell(w.Host), w.Pid, state, w.Jobs, running, capacity, cell(strings.Join(plugins, ", ")))
	}
	tw.Flush()
}

// cell escapes text from a worker record (it comes from the network) to
// stay in its cell: control bytes, new lines and tabs included.
func cell(s string) string {
	return strings.NewReplacer("\n", `\n`, "\t", `\t`, "\r", `\r`).Replace(quote.Text(s))
}

func prefix(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// workerCollector exports a worker's own counters.
type workerCollector struct {
	w                                *cluster.Worker
	batches, redelivered, items, bad *prometheus.Desc
}

func newWorkerCollector(w *cluster.Worker) *workerCollector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("pluginpool_cluster_"+name, help, nil, prometheus.Labels{"worker": w.ID()})
	}
	return &workerCollector{
		w:           w,
		batches:     d("batches_total", "Batches this worker answered."),
		redelivered: d("redelivered_batches_total", "Answered batches that another worker had held before (it died or hung past ack_wait)."),
		items:       d("items_total", "Items this worker answered."),
		bad:         d("failed_items_total", "Answered items that failed."),
	}
}

// Describe implements prometheus.Collector.
func (c *workerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.batches
	ch <- c.redelivered
	ch <- c.items
	ch <- c.bad
}

// Collect implements prometheus.Collector.
func (c *workerCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.w.Stats()
	for d, v := range map[*prometheus.Desc]int64{c.batches: s.Batches, c.redelivered: s.Redelivered, c.items: s.Items, c.bad: s.Failed} {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
}
