package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/pluginpool/pluginpool/host/backend"
	"github.com/pluginpool/pluginpool/host/cluster"
	"github.com/pluginpool/pluginpool/host/config"
	"github.com/pluginpool/pluginpool/host/pool"
	"github.com/pluginpool/pluginpool/host/settings"
)

// A site is where map, apply and run run their items: plugin processes on
// this machine (localSite), or the workers of a cluster (clusterSite).
// globalOptions.site picks one from the flags and the config, once; from
// then on the commands know only the backend.StartFuncs it makes, and the
// pipeline only the executors those start.
type site interface {
	// plugin resolves a plugin the user named, a name from the config or
	// a path to an executable (containing a '/'), to its pool.Config.
	plugin(name string) (pool.Config, error)
	// starter returns the function that starts the executor for the
	// plugin cfg, which the user called name.
	starter(name string, cfg pool.Config) backend.StartFunc
	// ignored says why setting key (a pool.toml key) has no effect here,
	// as the end of a sentence ("has no effect on a cluster: ..."), or ""
	// when it has one.
	ignored(key string) string
}

// site returns where a job's items run: on the cluster when --cluster or
// the config's [cluster] table says so (and --local does not), else here.
func (g *globalOptions) site(c *clusterOptions) (site, error) {
	f, err := g.loadConfig()
	if err != nil {
		return nil, err
	}
	if c.wanted(f) {
		return &clusterSite{g: g, c: c, f: f}, nil
	}
	return localSite{g}, nil
}

// localSite runs items on plugin processes of this machine.
type localSite struct{ g *globalOptions }

func (s localSite) plugin(name string) (pool.Config, error) { return s.g.poolConfig(name) }

func (s localSite) starter(_ string, cfg pool.Config) backend.StartFunc {
	return func(ctx context.Context) (backend.Executor, error) {
		// Logger and Stderr as the command's stderr is when the run
		// starts: through the progress bar, if there is one.
		return pool.Starter(s.g.finish(cfg))(ctx)
	}
}

func (localSite) ignored(string) string { return "" }

// startHere starts the executor of the plugin cfg, which the user called
// name, on this machine, and returns it with what the plugin reported
// about itself. check and plugins examine this machine's executable
// whatever --cluster says, so they start it as a localSite does for map,
// apply and run: that is the CLI's one way to start local processes.
func (g *globalOptions) startHere(ctx context.Context, name string, cfg pool.Config) (backend.Describer, error) {
	e, err := localSite{g}.starter(name, cfg)(ctx)
	if err != nil {
		return nil, err
	}
	d, ok := e.(backend.Describer)
	if !ok { // a bug: a local pool describes its plugin
		e.Terminate()
		return nil, fmt.Errorf("%s: the local back-end (%T) does not describe its plugin", name, e)
	}
	return d, nil
}

// clusterSite runs items on the workers of a cluster: each runs the plugin
// as its own pool.toml says; this machine's config only names the plugin
// and may pin it (sha256, version).
type clusterSite struct {
	g *globalOptions
	c *clusterOptions
	f *config.File // may be nil: no config file here
}

// plugin resolves name as a local site would, except that a name this
// machine's config does not know may still be one the workers know.
func (s *clusterSite) plugin(name string) (pool.Config, error) {
	cfg, err := s.g.poolConfig(name)
	if err != nil && !strings.ContainsRune(name, '/') && config.ValidName(name) {
		return pool.Config{Name: name}, nil
	}
	return cfg, err
}

func (s *clusterSite) starter(name string, cfg pool.Config) backend.StartFunc {
	return func(ctx context.Context) (backend.Executor, error) {
		cc, err := s.c.jobConfig(s.f, name, s.g.finish(cfg))
		if err != nil {
			return nil, err
		}
		return cluster.Starter(cc)(ctx)
	}
}

// ignored: a job carries the plugin's name and pins, and the pool keys
// cluster.Config has (cluster.FromPool); the rest of its settings are the
// workers'.
func (*clusterSite) ignored(key string) string {
	if k := settings.Lookup(settings.Pool, key); k == nil || settings.Has(&cluster.Config{}, k) {
		return ""
	}
	return "has no effect on a cluster: each worker runs the plugin as its own pool.toml says"
}
