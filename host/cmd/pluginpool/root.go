package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"

	"github.com/pluginpool/pluginpool/host/config"
	"github.com/pluginpool/pluginpool/host/pool"
	"github.com/pluginpool/pluginpool/internal/python"
	"github.com/pluginpool/pluginpool/internal/quote"
)

// IOStreams are the process's standard streams, injected so tests can
// assert exact output.
type IOStreams struct {
	In  io.Reader
	Out io.Writer
	Err io.Writer
	// ErrIsTerminal reports whether Err is a terminal (for progress bars).
	ErrIsTerminal bool
	// OutIsTerminal reports whether Out is a terminal: what plugins print
	// is then shown with control bytes and invalid UTF-8 escaped.
	OutIsTerminal bool
}

// StdIO returns the process's real streams.
func StdIO() IOStreams {
	return IOStreams{In: os.Stdin, Out: os.Stdout, Err: os.Stderr,
		ErrIsTerminal: isTerminal(os.Stderr), OutIsTerminal: isTerminal(os.Stdout)}
}

// globalOptions are the flags every command takes.
type globalOptions struct {
	configPath string
	configSet  bool
	logLevel   string
	logJSON    bool
	cpuProfile string
	// progress and metricsAddr are set by the flags of the commands that
	// take them (addProgressFlags, addMetricsFlag).
	progress    progressMode
	metricsAddr string
	io          IOStreams
	ctx         context.Context // Main's: done after a signal
	// daemon marks a command that handles its own signals (server, worker:
	// SIGTERM drains, SIGHUP reloads); Main then leaves them alone, and
	// the command's status is its own, not 128+N.
	daemon atomic.Bool
}

// Main runs the CLI with args (without the program name) and returns the
// exit status. SIGINT, SIGTERM and SIGHUP cancel the work in progress,
// whatever the command and wherever it is (loading the config included):
// workers are killed, temporary files removed, and the status is 130, 143
// or 129.
func Main(ctx context.Context, args []string, io IOStreams) ExitCode {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if io.OutIsTerminal {
		// Data, but shown on a screen: a plugin's bytes must not move the
		// cursor or retitle the window. Redirected, it is written as is.
		io.Out = quote.NewWriter(io.Out)
	}
	g := &globalOptions{io: io, ctx: ctx}
	sigs := make(chan os.Signal, 1)
	// SIGPIPE is watched so that a write to a closed stdout returns EPIPE
	// (handled as a quiet stop) instead of killing the process before it
	// can stop its plugins. SIGHUP (the terminal went away) would kill it
	// just as abruptly, leaving run's temporary output file behind.
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGPIPE)
	defer signal.Stop(sigs)
	go func() {
		for {
			select {
			case s := <-sigs:
				if s == syscall.SIGPIPE || g.daemon.Load() {
					continue
				}
				cancel(&signalError{s.(syscall.Signal)})
				return
			case <-ctx.Done():
				return
			}
		}
	}()

	root := newRootCmd(ctx, g)
	root.SetArgs(args)
	root.SetIn(io.In)
	root.SetOut(io.Out)
	root.SetErr(io.Err)
	code, err := status(ctx, root.ExecuteContext(ctx))
	if err != nil {
		// Escaped: the message may quote an item or relay a plugin's bytes.
		fmt.Fprintf(io.Err, "pluginpool: %s\n", quote.Text(err.Error()))
	}
	return code
}

func newRootCmd(ctx context.Context, g *globalOptions) *cobra.Command {
	root := &cobra.Command{
		Use:   "pluginpool",
		Short: "Run plugins over many items on every core",
		Long: `pluginpool keeps a pool of plugin processes (one per core by default) and
runs items through them in batches, in parallel, returning results in input
order. A crashed or hung worker costs only the task it was running: the task
is retried or failed with a clear error, and the worker is replaced.

Plugins and pipelines are described in pool.toml (see 'pluginpool validate'),
read from the current directory unless -c names another file. Data goes to
stdout; errors, logs, progress and statistics go to stderr.

To spread one job over many machines, run 'pluginpool server' (NATS with
JetStream) somewhere, 'pluginpool worker --connect URL' on each machine, and
'map', 'apply' or 'run' with --cluster URL (or a [cluster] table in
pool.toml): same output, same exit statuses. 'pluginpool workers' lists the
machines serving.

Exit status:
  0    every item succeeded
  1    some items failed (each is reported on stderr), or input unreadable
  2    bad command line or config
  3    a plugin could not start, or its pool degraded; or the cluster
       cannot be reached, or no worker there serves the plugin
  130  interrupted (SIGINT); 143 after SIGTERM, 129 after SIGHUP
  141  stdout was closed early (e.g. by | head)

Environment:
  PLUGINPOOL_CPUPROFILE=DIR   plugins write CPU profiles to DIR
  PLUGINPOOL_TOKEN=TOKEN      the cluster's token, for worker, workers, map,
                              apply and run (and server, to set it)

Shell completion (commands, flags, plugin and pipeline names):
  source <(pluginpool completion bash)    # see 'pluginpool completion --help'`,
		Example: `  pluginpool map double 1 2 3 4 5
  seq 1 100000 | pluginpool map double
  pluginpool run
  pluginpool new-plugin upper && cd upper && go mod tidy && go build -o upper .`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			g.configSet = cmd.Flags().Changed("config")
			if g.cpuProfile != "" {
				f, err := os.Create(g.cpuProfile)
				if err != nil {
					return err
				}
				if err := pprof.StartCPUProfile(f); err != nil {
					return err
				}
				cobra.OnFinalize(pprof.StopCPUProfile)
			}
			if hclog.LevelFromString(g.logLevel) == hclog.NoLevel {
				return usageError{fmt.Errorf("--log-level %q: want trace, debug, info, warn, error or off", g.logLevel)}
			}
			return nil
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	pf := root.PersistentFlags()
	pf.StringVarP(&g.configPath, "config", "c", "pool.toml", "the config `file`")
	pf.StringVar(&g.logLevel, "log-level", "warn", "log `level` of host and plugins: trace, debug, info, warn, error,\nor off")
	pf.BoolVar(&g.logJSON, "log-json", false, "write logs as JSON lines")
	pf.StringVar(&g.cpuProfile, "cpuprofile", "", "write a CPU profile of the host to `file`")
	_ = pf.MarkHidden("cpuprofile")

	root.AddCommand(
		newMapCmd(g),
		newApplyCmd(g),
		newPluginsCmd(g),
	)
	for _, add := range extraCommands {
		root.AddCommand(add(g))
	}
	addCompletions(root, g)
	return root
}

// extraCommands lets other files register commands.
var extraCommands []func(*globalOptions) *cobra.Command

// logger returns the host's logger per the flags.
func (g *globalOptions) logger() hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:       "pluginpool",
		Level:      hclog.LevelFromString(g.logLevel),
		Output:     g.io.Err,
		JSONFormat: g.logJSON,
	})
}

// loadConfig loads the config file. A missing default ./pool.toml is not
// an error (nil, nil): plugins can still be named by path.
func (g *globalOptions) loadConfig() (*config.File, error) {
	f, err := g.load()
	if err != nil && !g.configSet && errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return f, err
}

// load loads the config file, giving up on a signal (Main then exits
// 128+N, printing nothing more).
func (g *globalOptions) load() (*config.File, error) {
	return config.LoadContext(g.ctx, g.configPath)
}

// poolConfig resolves a plugin name (from the config) or path (containing
// a slash, or naming a .py file) to a pool.Config.
func (g *globalOptions) poolConfig(name string) (pool.Config, error) {
	f, err := g.loadConfig()
	if err != nil {
		return pool.Config{}, err
	}
	if f != nil {
		if _, ok := f.Plugins[name]; ok {
			cfg, err := f.PoolConfig(name)
			return g.finish(cfg), err
		}
	}
	if strings.ContainsRune(name, '/') || python.IsScript(name) {
		abs, _ := filepath.Abs(name)
		return g.finish(pool.Config{Path: abs, Name: filepath.Base(name)}), nil
	}
	if f == nil {
		return pool.Config{}, fmt.Errorf("unknown plugin %q: no %s here; pass -c FILE, or a path to the plugin executable (e.g. ./bin/plugins/%s)", name, g.configPath, name)
	}
	known := make([]string, 0, len(f.Plugins))
	for n := range f.Plugins {
		known = append(known, n)
	}
	_, err = f.Plugin(name) // says which configured name is closest
	return pool.Config{}, fmt.Errorf("%w; configured: %s", err, strings.Join(sorted(known), ", "))
}

func (g *globalOptions) finish(cfg pool.Config) pool.Config {
	cfg.Logger = g.logger()
	cfg.Stderr = g.io.Err
	return cfg
}
