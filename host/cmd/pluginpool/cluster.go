package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/pluginpool/pluginpool/host/cluster"
	"github.com/pluginpool/pluginpool/host/config"
	"github.com/pluginpool/pluginpool/host/pool"
	"github.com/pluginpool/pluginpool/host/settings"
)

// tokenEnv passes the server's token to worker, workers, map, apply and
// run, so it stays off command lines (visible in ps) and out of pool.toml.
const tokenEnv = "PLUGINPOOL_TOKEN"

// clusterOptions are the connection flags of the commands that talk to a
// cluster. A flag overrides the [cluster] table of the config file.
type clusterOptions struct {
	url                    string
	credentials, nkey      string
	tlsCA, tlsCert, tlsKey string
	settings               *settingFlags // --replicas
	local                  bool          // map, apply, run: ignore [cluster]
}

// addConnFlags registers the connection flags on fs; urlFlag names the
// URL's flag (--cluster for jobs, --connect for a worker).
func (c *clusterOptions) addConnFlags(fs *pflag.FlagSet, urlFlag, urlHelp string) {
	fs.StringVar(&c.url, urlFlag, "", urlHelp)
	fs.StringVar(&c.credentials, "credentials", "", "NATS credentials `file` to log in with (else the token in $"+tokenEnv+")")
	fs.StringVar(&c.nkey, "nkey", "", "NATS nkey seed `file` to log in with")
	fs.StringVar(&c.tlsCA, "tls-ca", "", "CA `file` that signed the server's certificate (turns TLS on)")
	fs.StringVar(&c.tlsCert, "tls-cert", "", "client certificate `file`, for servers that verify clients")
	fs.StringVar(&c.tlsKey, "tls-key", "", "client key `file`, with --tls-cert")
	c.settings = addSettingFlags(fs, settings.Cluster, []string{"replicas"}, nil)
}

// addJobFlags registers --cluster and --local for map, apply and run.
func (c *clusterOptions) addJobFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.url, "cluster", "", "run the items on a pluginpool cluster at `URL` (nats://HOST:4222)\ninstead of local plugin processes (default: [cluster] url in the config)")
	fs.BoolVar(&c.local, "local", false, "run locally even if the config has a [cluster] table")
}

// wanted reports whether a job runs on the cluster: --cluster, or a
// [cluster] table without --local.
func (c *clusterOptions) wanted(f *config.File) bool {
	if c.local {
		return false
	}
	return c.url != "" || f != nil && f.Cluster != nil
}

// nats resolves the connection: flags, then [cluster], then the token from
// the environment.
func (c *clusterOptions) nats(f *config.File) (cluster.NATS, error) {
	var n cluster.NATS
	if f != nil && f.Cluster != nil {
		fc := f.Cluster
		n = cluster.NATS{URL: fc.URL, CredsFile: fc.Credentials, NKeyFile: fc.NKey, TLSCA: fc.TLSCA, TLSCert: fc.TLSCert, TLSKey: fc.TLSKey}
		settings.Copy(&n, fc, settings.Cluster) // replicas
	}
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&n.URL, c.url)
	if c.credentials != "" || c.nkey != "" {
		n.CredsFile, n.NKeyFile = c.credentials, c.nkey
	}
	set(&n.TLSCA, c.tlsCA)
	set(&n.TLSCert, c.tlsCert)
	set(&n.TLSKey, c.tlsKey)
	if n.CredsFile == "" && n.NKeyFile == "" {
		n.Token = os.Getenv(tokenEnv)
	}
	return n, c.settings.apply(&n)
}

// jobConfig is the cluster executor's config for the plugin cfg. A plugin
// named by path is pinned to that file's sha256: the workers must run
// exactly it (under its base name).
func (c *clusterOptions) jobConfig(f *config.File, name string, cfg pool.Config) (cluster.Config, error) {
	n, err := c.nats(f)
	if err != nil {
		return cluster.Config{}, err
	}
	cc := cluster.FromPool(cfg, n)
	if f != nil {
		if pl := f.Plugins[name]; pl != nil {
			cc.Version = pl.Version
		}
		if fc := f.Cluster; fc != nil {
			settings.Copy(&cc, fc, settings.Cluster) // ack_wait, host_timeout, window
		}
	}
	if strings.ContainsRune(name, '/') && cc.SHA256 == "" {
		sum, err := pool.FileSHA256(cfg.Path)
		if err != nil {
			return cc, fmt.Errorf("%w: %v", pool.ErrNotFound, err)
		}
		cc.SHA256 = sum
	}
	return cc, nil
}

func init() {
	extraCommands = append(extraCommands, newServerCmd, newWorkerCmd, newWorkersCmd)
}

// daemonLogLevel makes info the default log level of a long-running
// command (its log is how an operator follows it), and takes over the
// signals from Main.
func (g *globalOptions) daemonLogLevel(cmd *cobra.Command) {
	if !cmd.Flags().Changed("log-level") {
		g.logLevel = "info"
	}
	g.daemon.Store(true)
}
