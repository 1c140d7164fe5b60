package config

import (
	"strings"
	"time"
)

// Cluster is the [cluster] table: the NATS JetStream cluster that `map`,
// `apply` and `run` send their items to (instead of local plugin
// processes), and that `pluginpool worker` serves. Each field's TOML key
// is in parentheses. Secrets stay out of the file: the token comes from
// PLUGINPOOL_TOKEN (or the URL), credentials from the files named here.
type Cluster struct {
	// URL is the NATS server, or several separated by commas (url).
	// Required in the table.
	URL string
	// Credentials is a NATS credentials file (credentials); NKey an nkey
	// seed file (nkey). At most one of them. Absolute paths.
	Credentials, NKey string
	// TLSCA is the CA that signed the server's certificate (tls_ca);
	// TLSCert and TLSKey this client's, for mutual TLS (tls_cert, tls_key).
	TLSCA, TLSCert, TLSKey string
	// AckWait is how long a worker may hold a batch without a sign of life
	// before it is given to another (ack_wait). Default 30s.
	AckWait time.Duration
	// HostTimeout is how long a job survives its host's silence before
	// workers drop it (host_timeout). Default 10s.
	HostTimeout time.Duration
	// Window bounds the batches a job has cut and not yet handed back
	// (window); 0 = automatic. Default 0.
	Window int
	// Replicas is how many copies JetStream keeps of the stream and
	// buckets when this client creates them (replicas). Default 1.
	Replicas int
	// Line is the line of the [cluster] header (0 if unknown).
	Line int
}

// The bounds of package cluster's Config (cluster.MinAckWait, ...), here
// too so that loading a config does not link the NATS server into every
// program that reads pool.toml; a test keeps them equal.
const (
	minAckWait     = 100 * time.Millisecond
	maxAckWait     = time.Hour
	minHostTimeout = 500 * time.Millisecond
	maxHostTimeout = time.Hour
	maxWindow      = 4096
)

var clusterKeys = []string{"url", "credentials", "nkey", "tls_ca", "tls_cert", "tls_key", "ack_wait", "host_timeout", "window", "replicas"}

// cluster reads the [cluster] table.
func (p *parser) cluster(v any) *Cluster {
	c := &Cluster{Line: p.lines.get([]string{"cluster"})}
	tbl, ok := p.table(p.at("cluster"), v)
	if !ok {
		return c
	}
	for _, k := range sortedKeys(tbl) {
		at := p.at("cluster", k)
		val := tbl[k]
		switch k {
		case "url":
			if s, ok := p.str(at, val); ok {
				if strings.TrimSpace(s) == "" {
					p.errorf(at, "must not be empty: the NATS server, e.g. \"nats://10.0.0.1:4222\"")
				}
				c.URL = strings.TrimSpace(s)
			}
		case "credentials", "nkey", "tls_ca", "tls_cert", "tls_key":
			s, ok := p.str(at, val)
			if !ok || s == "" {
				continue
			}
			path := p.resolve(s)
			switch k {
			case "credentials":
				c.Credentials = path
			case "nkey":
				c.NKey = path
			case "tls_ca":
				c.TLSCA = path
			case "tls_cert":
				c.TLSCert = path
			case "tls_key":
				c.TLSKey = path
			}
		case "ack_wait", "host_timeout":
			d, ok := p.duration(at, val)
			if !ok {
				continue
			}
			lo, hi := minAckWait, maxAckWait
			if k == "host_timeout" {
				lo, hi = minHostTimeout, maxHostTimeout
			}
			if d < lo || d > hi {
				p.errorf(at, "must be between %s and %s, got %s", lo, hi, d)
				continue
			}
			if k == "ack_wait" {
				c.AckWait = d
			} else {
				c.HostTimeout = d
			}
		case "window", "replicas":
			n, ok := val.(int64)
			if !ok {
				p.errorf(at, "expected an integer, got %s", describe(val))
				continue
			}
			if k == "window" {
				if n < 0 || n > maxWindow {
					p.errorf(at, "must be 0 (automatic) to %d, got %d", maxWindow, n)
					continue
				}
				c.Window = int(n)
			} else {
				if n < 1 || n > 5 {
					p.errorf(at, "must be 1 to 5, got %d", n)
					continue
				}
				c.Replicas = int(n)
			}
		default:
			p.unknownKey(at, k, clusterKeys, "")
		}
	}
	if _, ok := tbl["url"]; !ok {
		p.errorf(p.at("cluster"), "url is required: the NATS server, e.g. url = \"nats://10.0.0.1:4222\"")
	}
	if c.Credentials != "" && c.NKey != "" {
		p.errorf(p.at("cluster", "nkey"), "set credentials or nkey, not both")
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		p.errorf(p.at("cluster"), "tls_cert and tls_key go together")
	}
	return c
}

// duration reads a Go duration string.
func (p *parser) duration(at loc, v any) (time.Duration, bool) {
	s, ok := v.(string)
	if !ok {
		p.errorf(at, "expected a duration string such as \"30s\", got %s", describe(v))
		return 0, false
	}
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		p.errorf(at, "%q is not a duration: write Go syntax such as \"200ms\", \"30s\" or \"1m\"", s)
		return 0, false
	}
	return d, true
}

// ParseSize parses a whole number of bytes with an optional unit, as
// max_item_bytes takes it: "512KiB", "64MiB", "1GiB", "100MB", "4096".
func ParseSize(s string) (int64, error) { return parseSize(s) }

// ValidName reports whether name can name a plugin or a pipeline:
// lower-case letters, digits, '_' and '-', starting with a letter or digit.
func ValidName(name string) bool { return nameRE.MatchString(name) }
