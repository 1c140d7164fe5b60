package main

import (
	"strings"

	"github.com/spf13/cobra"
)

// Shell completion: cobra's `completion` command writes the scripts; the
// functions here complete what only the config knows. They read the file
// that -c names (or ./pool.toml) at completion time and stay silent if it
// does not load.

// completePlugin completes a command's first argument with the plugin
// names in the config, or with files when the word looks like a path.
func completePlugin(g *globalOptions) cobra.CompletionFunc {
	return func(_ *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		if strings.ContainsRune(toComplete, '/') || strings.HasPrefix(toComplete, ".") {
			return nil, cobra.ShellCompDirectiveDefault // a path to an executable
		}
		f, err := g.loadConfig()
		if err != nil || f == nil {
			return nil, cobra.ShellCompDirectiveDefault
		}
		var names []cobra.Completion
		for _, n := range sorted(keys(f.Plugins)) {
			if strings.HasPrefix(n, toComplete) {
				names = append(names, cobra.CompletionWithDesc(n, f.Plugins[n].Path))
			}
		}
		return names, cobra.ShellCompDirectiveNoFileComp
	}
}

// completePipeline completes a command's only argument with the pipeline
// names in the config.
func completePipeline(g *globalOptions) cobra.CompletionFunc {
	return func(_ *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		f, err := g.loadConfig()
		if err != nil || f == nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var names []cobra.Completion
		for _, n := range sorted(keys(f.Pipelines)) {
			if strings.HasPrefix(n, toComplete) {
				var stages []string
				for _, st := range f.Pipelines[n].Stages {
					stages = append(stages, st.Plugin)
				}
				names = append(names, cobra.CompletionWithDesc(n, strings.Join(stages, " → ")))
			}
		}
		return names, cobra.ShellCompDirectiveNoFileComp
	}
}

// addCompletions sets the completions of commands other files define
// (run, from run.go) and of the global flags. newRootCmd calls it once
// every command is added.
func addCompletions(root *cobra.Command, g *globalOptions) {
	_ = root.MarkPersistentFlagFilename("config", "toml")
	_ = root.RegisterFlagCompletionFunc("log-level", cobra.FixedCompletions(
		[]cobra.Completion{"trace", "debug", "info", "warn", "error", "off"}, cobra.ShellCompDirectiveNoFileComp))
	for _, c := range root.Commands() {
		if c.Name() == "run" && c.ValidArgsFunction == nil {
			c.ValidArgsFunction = completePipeline(g)
		}
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
