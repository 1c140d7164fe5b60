package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/pluginpool/pluginpool/host/backend"
	"github.com/pluginpool/pluginpool/host/config"
	"github.com/pluginpool/pluginpool/host/pipeline"
	"github.com/pluginpool/pluginpool/host/pool"
	"github.com/pluginpool/pluginpool/internal/quote"
)

func init() {
	extraCommands = append(extraCommands, newRunCmd)
}

// runOptions are the flags of run.
type runOptions struct {
	*globalOptions
	input     string
	output    string
	unordered bool
	stats     bool
	conn      clusterOptions
}

func newRunCmd(g *globalOptions) *cobra.Command {
	o := &runOptions{globalOptions: g}
	cmd := &cobra.Command{
		Use:   "run [PIPELINE]",
		Short: "Run a pipeline from the config file",
		Long: `Run PIPELINE, a [pipelines.NAME] table of the config file, or the default
one: the pipeline marked default = true, or the only one.

Items are read from the pipeline's input, one per line, and flow through
its stages in turn, each stage on a pool of its own, all stages busy at
once. Results are written to the pipeline's output in input order (unless
ordered = false or --unordered): for each item, the lines every stage
printed, then the last stage's value.

An item that fails in a stage is reported on stderr with its input line and
the stage, and goes no further; the others go on, and the exit status is 1.

Output to a file is written to a temporary file in the same directory and
renamed over the target only when the run completes (even with failed
items: the file then holds every other result). An interrupted run, or one
whose plugin pool degraded, leaves the target as it was.

When a stage's plugin keeps crashing (its pool degrades), the run stops
reading, reports why once, counts the items that were not run (those of
the input it never read included) and exits with status 3.

With --cluster URL, or a [cluster] table in the config (--local overrides
it), every stage runs on the workers of a pluginpool cluster, each stage as
a job of its own, all at once; the output is the same.`,
		Example: `  pluginpool run                    # the default pipeline in ./pool.toml
  pluginpool run demo --output -    # results to stdout
  seq 1 1000 | pluginpool run demo --input - --output doubled.txt
  pluginpool run demo --cluster nats://10.0.0.1:4222`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := ""
			if len(args) > 0 {
				name = args[0]
			}
			return o.run(cmd, name)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.input, "input", "i", "", "read items from `FILE` instead of the pipeline's input; - for stdin")
	f.StringVarP(&o.output, "output", "o", "", "write results to `FILE` instead of the pipeline's output; - for stdout")
	f.BoolVar(&o.unordered, "unordered", false, "write results as they complete, not in input order")
	f.BoolVar(&o.stats, "stats", false, "print each stage's statistics on stderr at the end")
	addProgressFlags(f, g)
	addMetricsFlag(f, g)
	o.conn.addJobFlags(f)
	// Pipeline names are completed by addCompletions (completion.go).
	return cmd
}

// pickPipeline loads the config and picks the pipeline to run: the one
// named, or the default one.
func (o *runOptions) pickPipeline(name string) (*config.File, *config.Pipeline, error) {
	f, err := o.load()
	if err != nil {
		if o.ctx.Err() != nil {
			return nil, nil, o.ctx.Err() // a signal: Main says nothing more
		}
		if errors.Is(err, os.ErrNotExist) && !errors.Is(err, config.ErrInvalid) {
			return nil, nil, usageError{fmt.Errorf("%w; pass -c FILE to name the config", err)}
		}
		return nil, nil, o.configProblems(err)
	}
	var pp *config.Pipeline
	if name != "" {
		pp, err = f.Pipeline(name)
	} else {
		pp, err = f.DefaultPipeline()
	}
	if err != nil {
		return nil, nil, usageError{err}
	}
	return f, pp, nil
}

// spec builds the run's pipeline.Spec, flags applied, its stages where s
// runs them. Input and Output are left unset for "-".
func (o *runOptions) spec(cmd *cobra.Command, s site, f *config.File, pp *config.Pipeline) (pipeline.Spec, error) {
	spec, err := pipeline.FromConfig(f, pp, func(cfg pool.Config) backend.StartFunc { return s.starter(cfg.Name, cfg) })
	if err != nil {
		return pipeline.Spec{}, err
	}
	// Paths on the command line are relative to the working directory;
	// those in the config, to the config's directory (FromConfig resolved
	// them already).
	flags := cmd.Flags()
	if flags.Changed("input") {
		spec.InputPath = ""
		if o.input != "-" {
			if spec.InputPath, err = filepath.Abs(o.input); err != nil {
				return pipeline.Spec{}, err
			}
			spec.InputName = o.input
		}
	}
	if flags.Changed("output") {
		spec.OutputPath = ""
		if o.output != "-" {
			if spec.OutputPath, err = filepath.Abs(o.output); err != nil {
				return pipeline.Spec{}, err
			}
		}
	}
	if o.unordered {
		spec.Unordered = true
	}
	if spec.InputPath == "" {
		spec.Input, spec.InputName = o.io.In, "stdin"
	}
	if spec.OutputPath == "" {
		spec.Output = o.io.Out
	}
	return spec, nil
}

func (o *runOptions) run(cmd *cobra.Command, name string) error {
	f, pp, err := o.pickPipeline(name)
	if err != nil {
		return err
	}
	s, err := o.site(&o.conn)
	if err != nil {
		return err
	}
	spec, err := o.spec(cmd, s, f, pp)
	if err != nil {
		return err
	}
	// The number of items is not known ahead: no ETA.
	j := &job{globalOptions: o.globalOptions, name: pp.Name, total: -1, stats: o.stats, bar: true}
	return j.run(cmd.Context(), spec)
}

// configProblems prints each problem of a config that did not load, one
// per line, and returns the usage status.
func (g *globalOptions) configProblems(err error) error {
	g.printProblems(err)
	return quiet(ExitUsage)
}

// printProblems prints each problem of a config that did not load, one
// per line.
func (g *globalOptions) printProblems(err error) {
	for _, e := range flatten(err) {
		var ce *config.Error
		if errors.As(e, &ce) {
			fmt.Fprintln(g.io.Err, quote.Text(e.Error())) // "pool.toml:12: key: message", like a compiler
		} else {
			fmt.Fprintf(g.io.Err, "pluginpool: %s\n", quote.Text(e.Error()))
		}
	}
}

// flatten returns the errors joined in err (errors.Join), or err alone.
func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}
