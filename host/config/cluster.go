package config

import (
	"strings"
	"time"

	"github.com/pluginpool/pluginpool/host/settings"
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

// clusterKeys are the [cluster] table's keys: where the cluster is and how
// to log in, then its settings (settings.Cluster).
var clusterKeys = append([]string{"url", "credentials", "nkey", "tls_ca", "tls_cert", "tls_key"}, settings.Names(settings.Cluster)...)

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
		default:
			sk := settings.Lookup(settings.Cluster, k)
			if sk == nil {
				p.unknownKey(at, k, clusterKeys, "")
				continue
			}
			if n, err := sk.FromTOML(val); err != nil {
				p.errorf(at, "%v", err)
			} else {
				settings.Set(c, sk, n)
			}
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

// ValidName reports whether name can name a plugin or a pipeline:
// lower-case letters, digits, '_' and '-', starting with a letter or digit.
func ValidName(name string) bool { return nameRE.MatchString(name) }
