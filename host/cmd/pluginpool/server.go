package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/pluginpool/pluginpool/host/cluster"
	"github.com/pluginpool/pluginpool/host/config"
)

// serverOptions are the flags of server.
type serverOptions struct {
	*globalOptions
	cfg        cluster.ServerConfig
	maxPayload string
	routes     []string
}

func newServerCmd(g *globalOptions) *cobra.Command {
	o := &serverOptions{globalOptions: g}
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run a NATS server with JetStream for a pluginpool cluster",
		Long: `Run an embedded NATS server with JetStream: the work queue of a pluginpool
cluster. Workers on any machine connect to it ('pluginpool worker --connect
URL'), and 'map', 'apply' and 'run' send their items there with --cluster URL.
Any NATS server or cluster with JetStream does the same job; this one needs
no separate install.

Authentication is never off by accident: listening beyond the loopback
interface requires a token (--token or $PLUGINPOOL_TOKEN), or the users,
nkeys or accounts of a --nats-config file. Without either, a token is
generated and printed on stderr with the worker command line that uses it;
clients pass it in $PLUGINPOOL_TOKEN. --tls-cert and --tls-key turn on TLS
(--tls-ca makes clients prove themselves too).

For a three-node NATS cluster (replicated stream: a node can die mid-job
and nothing is lost), run one server on each machine with --cluster-listen
and --routes naming the two others; see the README's "Scale out".

SIGINT or SIGTERM stops it; the queue is kept in --store for the next start.`,
		Example: `  pluginpool server                                         # 127.0.0.1:4222, store ./pluginpool-data
  pluginpool server --listen 0.0.0.0:4222 --store /var/lib/pluginpool
  pluginpool server --listen 0.0.0.0:4222 --store ./js --name n1 \
      --cluster-listen 0.0.0.0:6222 --routes 10.0.0.2:6222,10.0.0.3:6222`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			g.daemonLogLevel(cmd)
			return o.run(cmd)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.cfg.Listen, "listen", "127.0.0.1:4222", "clients connect to `HOST:PORT`; beyond loopback a token is required")
	f.StringVar(&o.cfg.StoreDir, "store", "pluginpool-data", "JetStream's `directory`")
	f.StringVar(&o.cfg.Token, "token", "", "the token clients must present (default $"+tokenEnv+"; generated when\nlistening beyond loopback without one)")
	f.StringVar(&o.cfg.NATSConfigFile, "nats-config", "", "a nats-server config `file` (accounts, users, nkeys, TLS, cluster,\nlimits); the flags given override it")
	f.StringVar(&o.cfg.TLSCert, "tls-cert", "", "server certificate `file`: clients connect with TLS")
	f.StringVar(&o.cfg.TLSKey, "tls-key", "", "server key `file`, with --tls-cert")
	f.StringVar(&o.cfg.TLSCA, "tls-ca", "", "CA `file` client certificates must be signed by (mutual TLS)")
	f.StringVar(&o.maxPayload, "max-payload", "8MiB", "largest message, hence largest item or batch: bytes or \"64MiB\" (max)")
	f.StringVar(&o.cfg.Name, "name", "", "this server's name, unique in a cluster (default HOSTNAME-PORT)")
	f.StringVar(&o.cfg.ClusterListen, "cluster-listen", "", "other servers of a NATS cluster connect to `HOST:PORT`")
	f.StringSliceVar(&o.routes, "routes", nil, "the other servers of the cluster, at their --cluster-listen `HOST:PORT,...`")
	f.StringVar(&o.cfg.ClusterName, "cluster-name", "", "the NATS cluster's name (default \"pluginpool\")")
	f.IntVar(&o.cfg.Replicas, "replicas", 0, "copies of the stream and buckets (default 1, or 3 with two or more routes)")
	return cmd
}

func (o *serverOptions) run(cmd *cobra.Command) error {
	daemonMemory()
	ctx := cmd.Context()
	flags := cmd.Flags()
	if o.cfg.Token == "" {
		o.cfg.Token = os.Getenv(tokenEnv)
	}
	if o.cfg.NATSConfigFile != "" {
		// The file says what the flags left at their defaults would.
		if !flags.Changed("listen") {
			o.cfg.Listen = ""
		}
		if !flags.Changed("store") {
			o.cfg.StoreDir = ""
		}
	}
	if flags.Changed("max-payload") || o.cfg.NATSConfigFile == "" {
		n, err := config.ParseSize(o.maxPayload)
		if err != nil || n < 1 || n > 64<<20 {
			return usageError{fmt.Errorf("--max-payload %q: want a size from 1 byte to 64MiB, e.g. \"8MiB\"", o.maxPayload)}
		}
		o.cfg.MaxPayload = int(n)
	}
	o.cfg.Routes = o.routes
	o.cfg.Logger = o.logger()
	s, err := cluster.StartServer(ctx, o.cfg)
	if err != nil {
		if errors.Is(err, cluster.ErrInvalidConfig) {
			return err // status: 2
		}
		return exitf(ExitStart, "%v", err)
	}
	// Stop on SIGINT or SIGTERM (the store keeps the queue); a server has
	// nothing to reload on SIGHUP.
	defer s.Shutdown()
	o.announce(s)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	log := o.logger()
	for {
		select {
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				log.Info("SIGHUP: nothing to reload; SIGTERM stops the server")
				continue
			}
			log.Info("stopping", "signal", sig)
		case <-ctx.Done():
			log.Info("stopping")
		}
		return nil
	}
}

// announce tells the operator how clients connect.
func (o *serverOptions) announce(s *cluster.Server) {
	w := o.io.Err
	addr := s.Addr().String()
	fmt.Fprintf(w, "pluginpool server: NATS with JetStream on %s (store %s)\n", addr, s.StoreDir())
	url := "nats://" + advertised(s)
	if o.cfg.TLSCert != "" {
		url = "tls://" + advertised(s)
	}
	token, generated := s.Token()
	prefix := ""
	switch {
	case generated:
		fmt.Fprintf(w, "Listening beyond loopback without a token: generated one. Clients pass it in $%s:\n", tokenEnv)
		prefix = tokenEnv + "=" + token + " "
	case token != "":
		prefix = tokenEnv + "=... "
	}
	fmt.Fprintf(w, "  workers: %spluginpool worker --connect %s\n", prefix, url)
	fmt.Fprintf(w, "  jobs:    %spluginpool map --cluster %s PLUGIN < in.jsonl\n", prefix, url)
}

// advertised is the host:port other machines reach the server at.
func advertised(s *cluster.Server) string {
	host, port, _ := net.SplitHostPort(s.Addr().String())
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		if h, err := os.Hostname(); err == nil {
			host = h
		}
	}
	return net.JoinHostPort(host, port)
}
