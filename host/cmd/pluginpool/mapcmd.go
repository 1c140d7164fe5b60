package main

import (
	"runtime"

	"github.com/spf13/cobra"

	"github.com/pluginpool/pluginpool/host/backend"
	"github.com/pluginpool/pluginpool/host/pipeline"
	"github.com/pluginpool/pluginpool/host/pool"
	"github.com/pluginpool/pluginpool/host/settings"
)

// mapOptions are the flags of map and apply.
type mapOptions struct {
	*globalOptions
	settings  *settingFlags // -w/--workers; map: --chunk-size
	unordered bool
	stats     bool
	batching  bool // map, not apply: takes --progress and --metrics-addr
	conn      clusterOptions
}

func (o *mapOptions) addFlags(cmd *cobra.Command, batching bool) {
	f := cmd.Flags()
	o.batching = batching
	keys := []string{"workers"}
	if batching {
		keys = append(keys, "chunk_size")
	}
	o.settings = addSettingFlags(f, settings.Pool, keys, nil)
	if batching {
		f.BoolVar(&o.unordered, "unordered", false, "write results as they complete, not in input order")
	}
	f.BoolVar(&o.stats, "stats", false, "print statistics to stderr at the end: items ok and failed, items/s,\nretries, timeouts, task latency p50/p95/p99, and per worker its tasks,\nrestarts and busy time")
	if batching {
		addProgressFlags(f, o.globalOptions)
		addMetricsFlag(f, o.globalOptions)
	}
	o.conn.addJobFlags(f)
}

// config resolves the plugin where s runs it and applies the flags.
func (o *mapOptions) config(cmd *cobra.Command, s site, name string) (pool.Config, error) {
	cfg, err := s.plugin(name)
	if err != nil {
		return cfg, err
	}
	return cfg, o.settings.apply(&cfg)
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
				cmd.Flags().Set("workers", "1")
			}
			return o.runMap(cmd, args[0], args[1:])
		},
	}
	o.addFlags(cmd, false)
	return cmd
}

func (o *mapOptions) runMap(cmd *cobra.Command, name string, args []string) error {
	s, err := o.site(&o.conn)
	if err != nil {
		return err
	}
	cfg, err := o.config(cmd, s, name)
	if err != nil {
		return err
	}
	// A pipeline of one stage: the items from the arguments, else stdin.
	spec := pipeline.Spec{Output: o.io.Out, Unordered: o.unordered}
	total := -1 // stdin: unknown
	if len(args) > 0 {
		// No more workers than items: each start costs a few ms.
		if cfg.Workers == 0 {
			cfg.Workers = runtime.NumCPU()
		}
		cfg.Workers = min(cfg.Workers, len(args))
		spec.Args, total = args, len(args)
	} else {
		spec.Input, spec.InputName = o.io.In, "stdin"
	}
	if o.batching {
		o.settings.warnIgnored(s, o.logger())
	}
	spec.Stages = []backend.StartFunc{s.starter(name, cfg)}
	j := &job{globalOptions: o.globalOptions, single: true, name: name, total: total, stats: o.stats, bar: o.batching}
	return j.run(cmd.Context(), spec)
}
