package cluster

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/pluginpool/pluginpool/host/pool"
	"github.com/pluginpool/pluginpool/host/settings"
)

// NATS says where the cluster's NATS server is and how to log in to it.
// The zero value connects to nats://127.0.0.1:4222 without credentials.
// At most one of Token, CredsFile and NKeyFile may be set (a token may
// also ride in the URL: nats://TOKEN@host:4222).
type NATS struct {
	// URL is the server, or several separated by commas (any node of a
	// NATS cluster will do; the client learns the others). Schemes nats://
	// and tls://. Default nats://127.0.0.1:4222.
	URL string
	// Token is the server's authorization token (pluginpool server prints
	// it; the CLI reads it from PLUGINPOOL_TOKEN).
	Token string
	// CredsFile is a NATS credentials file (a user JWT and its nkey seed).
	CredsFile string
	// NKeyFile is a file holding an nkey seed (SU...), for servers that
	// list nkey users.
	NKeyFile string
	// TLSCA, if set, is the PEM file of the CA that signed the server's
	// certificate; setting it (or a tls:// URL) turns TLS on.
	TLSCA string
	// TLSCert and TLSKey are this client's certificate and key, for
	// servers that verify clients (mutual TLS). Both or neither.
	TLSCert, TLSKey string
	// Replicas is how many copies JetStream keeps of the stream and
	// buckets, when this client is the first to create them: 1 for a single
	// server, 3 for a three-node cluster. Existing ones are used as they
	// are. Default 1.
	Replicas int
}

// DefaultURL is the server NATS.URL defaults to.
const DefaultURL = "nats://127.0.0.1:4222"

// withDefaults checks n and fills in defaults, or returns every problem.
func (n NATS) withDefaults() (NATS, []error) {
	var errs []error
	if strings.TrimSpace(n.URL) == "" {
		n.URL = DefaultURL
	}
	set := 0
	for _, s := range []string{n.Token, n.CredsFile, n.NKeyFile} {
		if s != "" {
			set++
		}
	}
	if set > 1 {
		errs = append(errs, fmt.Errorf("%w: set one of a token, a credentials file and an nkey seed file, not %d", ErrInvalidConfig, set))
	}
	if (n.TLSCert == "") != (n.TLSKey == "") {
		errs = append(errs, fmt.Errorf("%w: a TLS client certificate needs its key, and a key its certificate", ErrInvalidConfig))
	}
	for _, f := range []struct{ what, path string }{
		{"credentials file", n.CredsFile}, {"nkey seed file", n.NKeyFile},
		{"TLS CA file", n.TLSCA}, {"TLS certificate", n.TLSCert}, {"TLS key", n.TLSKey},
	} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			errs = append(errs, fmt.Errorf("%w: %s: %v", ErrInvalidConfig, f.what, err))
		}
	}
	for _, err := range settings.Apply(&n, settings.Cluster) {
		errs = append(errs, fmt.Errorf("%w: %v", ErrInvalidConfig, err))
	}
	return n, errs
}

// Config describes one plugin's executor: which plugin the cluster's
// workers are to run, what they must be, and how batches travel. Only
// Plugin is required; the zero value of every other field means its
// default. Start copies the Config.
type Config struct {
	// NATS is the cluster to connect to.
	NATS NATS

	// Plugin is the name the workers know the plugin by: a [plugins.NAME]
	// table of their pool.toml. Required.
	Plugin string
	// SHA256, if set, pins the plugin's executable: a worker whose file has
	// another sha256 does not serve the job (the host names it, and why).
	SHA256 string
	// Version, if set, pins the version the plugin reports, the same way.
	Version string

	// ChunkSize fixes the number of items per batch. Default 0: adaptive, a
	// few tens of milliseconds of observed work per batch.
	ChunkSize int
	// MaxItemBytes is the largest item accepted; a larger one fails alone
	// with backend.ErrTooLarge. Items that do not fit in one NATS message (the
	// server's max_payload) fail the same way. Default 64 MiB.
	MaxItemBytes int
	// MaxAttempts bounds the deliveries of a batch of an idempotent plugin
	// when the workers holding it die or hang; then its items fail with a
	// *LostError. Default 3.
	MaxAttempts int
	// AckWait is how long a worker may hold a batch without a sign of life
	// (it sends one every AckWait/3 while it runs) before JetStream gives
	// the batch to another worker. Default 30s.
	AckWait time.Duration
	// HostTimeout is how long the job survives its host's silence: the host
	// refreshes the job record every HostTimeout/5; when workers see none
	// for HostTimeout, they drop the job's batches and stop its work.
	// Default 10s.
	HostTimeout time.Duration
	// Window bounds the batches a job has cut and not yet handed to the
	// caller: the host's memory and the stream's depth. Default 0: twice
	// the slots of the workers serving the plugin at the job's start,
	// within 16..128.
	Window int
	// StartTimeout is how long Start waits for a worker that serves the
	// plugin. Default 10s.
	StartTimeout time.Duration

	// Logger receives the executor's log lines. Default: warnings and up
	// to os.Stderr.
	Logger hclog.Logger
}

// Defaults: what a zero Config field means (settings.Cluster, and
// settings.Pool's start_timeout).
const (
	DefaultAckWait      = settings.DefaultAckWait
	DefaultHostTimeout  = settings.DefaultHostTimeout
	DefaultStartTimeout = settings.DefaultStartTimeout
)

// Bounds (settings.Cluster, where each is explained).
const (
	MinAckWait     = settings.MinAckWait
	MaxAckWait     = settings.MaxAckWait
	MinHostTimeout = settings.MinHostTimeout
	MaxHostTimeout = settings.MaxHostTimeout
	MaxWindow      = settings.MaxWindow
)

// FromPool returns the Config for running the local pool's cfg on the
// cluster: its Name is the plugin's name on the workers; its SHA256 and
// Logger carry over, and so do the pool keys Config has a field for
// (chunk_size, max_item_bytes, max_attempts, start_timeout). The rest of
// cfg (path, workers, timeouts, Init config) is the workers' business:
// each runs the plugin as its own pool.toml says.
func FromPool(cfg pool.Config, n NATS) Config {
	c := Config{NATS: n, Plugin: cfg.Name, SHA256: cfg.SHA256, Logger: cfg.Logger}
	settings.Copy(&c, &cfg, settings.Pool)
	return c
}

// withDefaults returns a copy of c with defaults applied, or every problem
// found, each matching ErrInvalidConfig.
func (c Config) withDefaults() (Config, error) {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...)))
	}
	n, nerrs := c.NATS.withDefaults()
	c.NATS = n
	errs = append(errs, nerrs...)
	if c.Plugin == "" {
		bad("Plugin is required: the plugin's name in the workers' pool.toml")
	}
	c.SHA256 = strings.ToLower(strings.TrimSpace(c.SHA256))
	if c.SHA256 != "" && !pool.ValidSHA256(c.SHA256) {
		bad("SHA256 %q is not a 64-digit hex sha256 digest", c.SHA256)
	}
	// Its pool keys (chunk_size, max_item_bytes, max_attempts,
	// start_timeout) and [cluster] keys, with their defaults and bounds.
	for _, err := range settings.Apply(&c, settings.Pool, settings.Cluster) {
		bad("%v", err)
	}
	if c.Logger == nil {
		c.Logger = hclog.New(&hclog.LoggerOptions{Name: "pluginpool", Level: hclog.Warn, Output: os.Stderr})
	}
	return c, errors.Join(errs...)
}
