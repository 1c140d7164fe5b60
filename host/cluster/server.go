package cluster

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// ServerConfig describes an embedded NATS server with JetStream. The zero
// value of each field means its default, or, with NATSConfigFile, what
// that file says.
type ServerConfig struct {
	// Listen is the client address, host:port. Default 127.0.0.1:4222.
	// Listening beyond the loopback interface always requires a login: a
	// token is generated when Token is empty and NATSConfigFile sets no
	// users.
	Listen string
	// StoreDir is where JetStream keeps its files. Required unless
	// NATSConfigFile sets store_dir.
	StoreDir string
	// Token is the authorization token clients must present.
	Token string
	// NATSConfigFile is a nats-server configuration file (accounts, users,
	// nkeys, TLS, clustering, limits): everything NATS offers. The fields
	// above and below override what it says when set.
	NATSConfigFile string
	// TLSCert and TLSKey turn on TLS for clients; with TLSCA, clients must
	// also present a certificate signed by that CA (mutual TLS).
	TLSCert, TLSKey, TLSCA string
	// MaxPayload is the largest message the server takes, in bytes; a batch
	// of items (and an item) must fit in one. Default 8 MiB, NATS's
	// recommended ceiling; at most 64 MiB.
	MaxPayload int
	// Name names this server; in a cluster each needs its own. Default:
	// the machine's name and the client port.
	Name string
	// ClusterListen is the address other servers of a NATS cluster
	// connect to (host:port). Set it, and Routes, to run a cluster of
	// embedded servers.
	ClusterListen string
	// Routes are the other servers' cluster addresses (host:port or
	// nats-route://host:port).
	Routes []string
	// ClusterName names the cluster. Default "pluginpool".
	ClusterName string
	// Replicas is how many copies the stream and buckets get when this
	// server creates them. Default 1 alone, 3 in a cluster of three or more
	// (1 + len(Routes)).
	Replicas int
	// Logger receives the server's log lines. Default: info and up to
	// os.Stderr.
	Logger hclog.Logger
}

// DefaultMaxPayload is ServerConfig.MaxPayload's default.
const DefaultMaxPayload = 8 << 20

// Server is an embedded NATS server with JetStream, plus a janitor that
// reaps the jobs of hosts that went silent even when no worker is
// connected.
type Server struct {
	ns        *server.Server
	cfg       ServerConfig
	token     string
	generated bool
	store     string
	log       hclog.Logger
	stop      context.CancelFunc
	wg        sync.WaitGroup
	shutdown  sync.Once
}

// StartServer starts the server and returns once it takes connections.
// Setting up the stream and buckets, which in a cluster waits for a quorum,
// and the janitor continue in the background.
func StartServer(ctx context.Context, cfg ServerConfig) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = hclog.New(&hclog.LoggerOptions{Name: "pluginpool", Level: hclog.Info, Output: os.Stderr})
	}
	log := cfg.Logger.Named("server")
	opts, generated, err := cfg.options()
	if err != nil {
		return nil, err
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	ns.SetLoggerV2(&natsLogger{log}, log.IsDebug(), log.IsTrace(), false)
	ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		return nil, fmt.Errorf("NATS server did not start listening on %s within 30s", net.JoinHostPort(opts.Host, strconv.Itoa(opts.Port)))
	}
	s := &Server{ns: ns, cfg: cfg, token: opts.Authorization, generated: generated, log: log, store: opts.StoreDir}
	if hasUsers(opts) {
		// The janitor logs in like any client; it has no user of its
		// own among the file's.
		log.Info("the server's janitor is off: the config file's users leave it no login. Workers reap the jobs of silent hosts, and the first client creates the stream")
		s.stop = func() {}
		return s, nil
	}
	replicas := cfg.Replicas
	if replicas == 0 {
		replicas = 1
		if len(opts.Routes) >= 2 {
			replicas = 3
		}
	}
	life, stop := context.WithCancel(context.WithoutCancel(ctx))
	s.stop = stop
	s.wg.Go(func() { s.tend(life, replicas) })
	return s, nil
}

// options builds nats-server's options from the config.
func (c ServerConfig) options() (*server.Options, bool, error) {
	opts := &server.Options{}
	if c.NATSConfigFile != "" {
		var err error
		if opts, err = server.ProcessConfigFile(c.NATSConfigFile); err != nil {
			return nil, false, fmt.Errorf("%w: %s: %v", ErrInvalidConfig, c.NATSConfigFile, err)
		}
	}
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...)))
	}
	listen := c.Listen
	if listen == "" && c.NATSConfigFile == "" {
		listen = "127.0.0.1:4222"
	}
	if listen != "" {
		host, port, err := net.SplitHostPort(listen)
		p, perr := strconv.Atoi(port)
		if err != nil || perr != nil || p < 0 || p > 65535 {
			bad("listen address %q: want host:port, e.g. 0.0.0.0:4222", listen)
		}
		opts.Host, opts.Port = host, p
		if p == 0 {
			opts.Port = server.RANDOM_PORT // nats-server reads 0 as 4222
		}
	}
	if opts.Host == "" {
		opts.Host = "0.0.0.0" // nats-server's default
	}
	opts.JetStream = true
	if c.StoreDir != "" {
		opts.StoreDir = c.StoreDir
	}
	if opts.StoreDir == "" {
		bad("a JetStream store directory is required (--store DIR)")
	}
	switch {
	case c.MaxPayload == 0 && opts.MaxPayload == 0:
		opts.MaxPayload = DefaultMaxPayload
	case c.MaxPayload < 0 || c.MaxPayload > 64<<20:
		bad("max payload must be 1 byte to 64 MiB, got %d", c.MaxPayload)
	case c.MaxPayload > 0:
		opts.MaxPayload = int32(c.MaxPayload)
	}
	if opts.MaxPending < int64(opts.MaxPayload)*4 {
		opts.MaxPending = int64(opts.MaxPayload) * 4
	}
	if c.Token != "" {
		opts.Authorization = c.Token
	}
	generated := false
	if opts.Authorization == "" && !hasUsers(opts) && !loopback(opts.Host) {
		tok, err := newToken()
		if err != nil {
			return nil, false, err
		}
		opts.Authorization, generated = tok, true
	}
	if c.TLSCert != "" || c.TLSKey != "" {
		if c.TLSCert == "" || c.TLSKey == "" {
			bad("TLS needs both a certificate and its key")
		} else {
			tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: c.TLSCert, KeyFile: c.TLSKey, CaFile: c.TLSCA, Verify: c.TLSCA != ""})
			if err != nil {
				bad("TLS: %v", err)
			}
			opts.TLSConfig, opts.TLS, opts.TLSVerify = tc, true, c.TLSCA != ""
			opts.TLSTimeout = 5
		}
	} else if c.TLSCA != "" {
		bad("a TLS CA for clients needs the server's own certificate and key too")
	}
	if c.Name != "" {
		opts.ServerName = c.Name
	}
	if opts.ServerName == "" {
		opts.ServerName = strings.ReplaceAll(hostname(), ".", "-") + "-" + strconv.Itoa(opts.Port)
	}
	if c.ClusterListen != "" {
		host, port, err := net.SplitHostPort(c.ClusterListen)
		p, perr := strconv.Atoi(port)
		if err != nil || perr != nil {
			bad("cluster address %q: want host:port, e.g. 0.0.0.0:6222", c.ClusterListen)
		}
		opts.Cluster.Host, opts.Cluster.Port = host, p
		if p == 0 {
			opts.Cluster.Port = server.RANDOM_PORT
		}
		if c.ClusterName != "" || opts.Cluster.Name == "" {
			opts.Cluster.Name = cmpOr(c.ClusterName, "pluginpool")
		}
	}
	for _, r := range c.Routes {
		if !strings.Contains(r, "://") {
			r = "nats-route://" + r
		}
		u, err := url.Parse(r)
		if err != nil || u.Host == "" {
			bad("route %q: want host:port of another server's cluster address", r)
			continue
		}
		opts.Routes = append(opts.Routes, u)
	}
	if len(opts.Routes) > 0 && opts.Cluster.Port == 0 {
		bad("routes need a cluster address of this server too (--cluster-listen)")
	}
	// Servers of one cluster log in to each other with the token too.
	if opts.Authorization != "" && opts.Cluster.Port != 0 && opts.Cluster.Username == "" {
		opts.Cluster.Username, opts.Cluster.Password = "pluginpool", opts.Authorization
		for _, u := range opts.Routes {
			if u.User == nil {
				u.User = url.UserPassword("pluginpool", opts.Authorization)
			}
		}
	}
	opts.NoSigs = true // the CLI handles signals
	return opts, generated, errors.Join(errs...)
}

// hasUsers reports whether opts log clients in as users (passwords,
// nkeys, JWTs) rather than with a token or not at all.
func hasUsers(opts *server.Options) bool {
	if len(opts.Users) > 0 || len(opts.Nkeys) > 0 || len(opts.TrustedOperators) > 0 || opts.AuthCallout != nil || opts.Username != "" {
		return true
	}
	return false
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// loopback reports whether host is only reachable from this machine.
func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// newToken returns 32 random bytes, base64url.
func newToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// tend sets up the stream and buckets, then runs the janitor, until ctx is
// done. In a cluster the first can wait for the other servers.
func (s *Server) tend(ctx context.Context, replicas int) {
	opts := []nats.Option{nats.InProcessServer(s.ns), nats.Name("pluginpool server janitor"), nats.MaxReconnects(-1)}
	if s.token != "" {
		opts = append(opts, nats.Token(s.token))
	}
	nc, err := nats.Connect("", opts...)
	if err != nil {
		s.log.Error("connecting the janitor", "error", err)
		return
	}
	l := &link{nc: nc, maxPayload: int(nc.MaxPayload())}
	defer nc.Close()
	if err := l.ensure(ctx, replicas); err != nil {
		if ctx.Err() == nil {
			s.log.Error("setting up JetStream", "error", err)
		}
		return
	}
	s.log.Info("JetStream ready", "stream", streamName, "replicas", replicas)
	jn := &janitor{l: l, log: s.log.Named("janitor")}
	if err := jn.run(ctx); err != nil {
		s.log.Error("janitor", "error", err)
	}
}

// Token returns the token clients must present, or "" if the server takes
// other logins or none. Generated reports whether StartServer made it up.
func (s *Server) Token() (token string, generated bool) { return s.token, s.generated }

// ClientURL returns the URL clients on this machine connect to.
func (s *Server) ClientURL() string {
	ta, ok := s.ns.Addr().(*net.TCPAddr)
	if !ok {
		return s.ns.ClientURL()
	}
	host := ta.IP.String()
	if ta.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	scheme := "nats"
	if s.cfg.TLSCert != "" {
		scheme = "tls"
	}
	return scheme + "://" + net.JoinHostPort(host, strconv.Itoa(ta.Port))
}

// ClusterAddr returns the address the server listens on for other
// servers of its cluster, or nil.
func (s *Server) ClusterAddr() net.Addr { return s.ns.ClusterAddr() }

// StoreDir returns the directory JetStream keeps its files in.
func (s *Server) StoreDir() string { return s.store }

// Addr returns the address the server listens on for clients.
func (s *Server) Addr() net.Addr { return s.ns.Addr() }

// Shutdown stops the janitor and the server, and waits for both. Safe to
// call more than once.
func (s *Server) Shutdown() {
	s.shutdown.Do(func() {
		s.stop()
		s.wg.Wait()
		s.ns.Shutdown()
		s.ns.WaitForShutdown()
	})
}

// natsLogger passes nats-server's log lines to hclog.
type natsLogger struct{ l hclog.Logger }

// Noticef lines (the start-up banner, "Server is ready") go to debug:
// StartServer's caller announces what matters.
func (n *natsLogger) Noticef(format string, v ...any) { n.l.Debug(fmt.Sprintf(format, v...)) }
func (n *natsLogger) Warnf(format string, v ...any)   { n.l.Warn(fmt.Sprintf(format, v...)) }
func (n *natsLogger) Fatalf(format string, v ...any)  { n.l.Error(fmt.Sprintf(format, v...)) }
func (n *natsLogger) Errorf(format string, v ...any)  { n.l.Error(fmt.Sprintf(format, v...)) }
func (n *natsLogger) Debugf(format string, v ...any)  { n.l.Debug(fmt.Sprintf(format, v...)) }
func (n *natsLogger) Tracef(format string, v ...any)  { n.l.Trace(fmt.Sprintf(format, v...)) }
