package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/pluginpool/pluginpool/host/config"
)

func init() {
	extraCommands = append(extraCommands, newValidateCmd)
}

func newValidateCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "validate",
		Short: "Check the config file without running anything",
		Long: `Check the config file (-c FILE, default ./pool.toml) and report every
problem, one per line on stderr, each with its file and line:

  - the schema: unknown keys, wrong types, bad durations and sizes,
    out-of-range numbers, stages naming unknown plugins, more than one
    default pipeline;
  - the files: each plugin executable exists, is executable (a .py
    plugin need only exist) and, when sha256 is set, has that digest; each pipeline's input file exists, and
    its output file's directory.

It starts no plugin. A valid config prints "FILE: OK (N plugins, M
pipelines)" on stdout and exits 0; an invalid one exits 2.`,
		Example: `  pluginpool validate
  pluginpool validate -c deploy/pool.toml`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return validate(g)
		},
	}
}

func validate(g *globalOptions) error {
	f, err := g.load()
	if err != nil {
		if g.ctx.Err() != nil {
			return g.ctx.Err() // a signal: Main says nothing more
		}
		if errors.Is(err, os.ErrNotExist) && !errors.Is(err, config.ErrInvalid) {
			return exitf(ExitUsage, "%v; pass -c FILE to name the config", err)
		}
		g.printProblems(err)
		return exitf(ExitUsage, "%s is invalid: %s", g.configPath, plural(len(flatten(err)), "problem"))
	}
	if errs := f.Check(); len(errs) > 0 {
		g.printProblems(errors.Join(errs...))
		return exitf(ExitUsage, "%s is invalid: %s", g.configPath, plural(len(errs), "problem"))
	}
	fmt.Fprintf(g.io.Out, "%s: OK (%s, %s)\n", g.configPath,
		plural(len(f.Plugins), "plugin"), plural(len(f.Pipelines), "pipeline"))
	return nil
}

// plural returns "1 plugin", "2 plugins".
func plural(n int, noun string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, noun)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
