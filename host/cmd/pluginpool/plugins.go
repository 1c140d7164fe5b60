package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/pluginpool/pluginpool/host/config"
	"github.com/pluginpool/pluginpool/host/pool"
	"github.com/pluginpool/pluginpool/internal/quote"
)

func newPluginsCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "plugins",
		Short: "List the configured plugins: path, version, workers",
		Long: `List the plugins in the config file with their executable, the version
each reports (by starting one process of each), and the number of workers
a pool of it starts. The table goes to stdout, one plugin per line:

  NAME  VERSION  WORKERS  PATH  STATUS

STATUS is "ok", or why the plugin cannot start; then the exit status is 3
('pluginpool check NAME' says more).`,
		Example: `  pluginpool plugins
  pluginpool plugins -c deploy/pool.toml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := g.load()
			if err != nil {
				return err
			}
			return listPlugins(cmd.Context(), g, f)
		},
	}
}

func listPlugins(ctx context.Context, g *globalOptions, f *config.File) error {
	names := make([]string, 0, len(f.Plugins))
	for n := range f.Plugins {
		names = append(names, n)
	}
	sorted(names)
	type row struct{ version, status string }
	rows := make([]row, len(names))
	cfgs := make([]pool.Config, len(names))
	var wg sync.WaitGroup
	for i, n := range names {
		cfg, err := f.PoolConfig(n)
		if err != nil {
			return err
		}
		cfgs[i] = cfg
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := cfg
			c.Workers = 1
			sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			defer cancel()
			p, err := g.startHere(sctx, n, c)
			if err != nil {
				// A cell of a table: the error's first line, escaped (a
				// script's stderr may carry tabs and control bytes); check
				// shows the whole of it.
				first, _, more := strings.Cut(err.Error(), "\n")
				status := "cannot start: " + quote.Text(strings.ReplaceAll(first, "\t", " "))
				if more {
					status += " (pluginpool check " + n + " shows more)"
				}
				rows[i] = row{"-", status}
				return
			}
			info := p.Info()
			p.Close()
			rows[i] = row{info.Version, "ok"}
		}()
	}
	wg.Wait()
	failed := 0
	tw := tabwriter.NewWriter(g.io.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tVERSION\tWORKERS\tPATH\tSTATUS")
	for i, n := range names {
		w := fmt.Sprint(cfgs[i].Workers)
		if cfgs[i].Workers == 0 {
			w = fmt.Sprintf("%d (one per core)", defaultCores())
		}
		if rows[i].status != "ok" {
			failed++
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", n, rows[i].version, w, cfgs[i].Path, rows[i].status)
	}
	tw.Flush()
	if failed > 0 {
		return quiet(ExitStart) // the table says which and why
	}
	return nil
}
