package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Names of the cluster's JetStream resources (see the package doc).
const (
	streamName    = "PLUGINPOOL_BATCHES"
	batchPrefix   = "pluginpool.batch."
	answerPrefix  = "pluginpool.answer."
	jobsBucket    = "pluginpool_jobs"
	workersBucket = "pluginpool_workers"
)

// Worker records are re-put every workerBeat and vanish workerTTL after
// the last one: `pluginpool workers` lists only live workers, and a host
// counts only those.
const (
	workerBeat = 2 * time.Second
	workerTTL  = 10 * time.Second
)

func batchSubject(job string) string  { return batchPrefix + job }
func answerSubject(job string) string { return answerPrefix + job }
func consumerName(job string) string  { return "job_" + job }

// link is one client's connection to the cluster and its resources.
type link struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	stream  jetstream.Stream
	jobs    jetstream.KeyValue
	workers jetstream.KeyValue
	// maxPayload is the largest message the server takes, learned at
	// connect time.
	maxPayload int
}

// dial connects to n and makes sure the stream and buckets exist. name
// names the connection in the server's monitoring.
func dial(ctx context.Context, n NATS, name string, log hclog.Logger) (*link, error) {
	opts := []nats.Option{
		nats.Name(name),
		// Reconnect forever: a cluster node restarting, or a network blip,
		// must not end a worker or a job. JetStream redelivers what was
		// lost meanwhile.
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.Timeout(5 * time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("disconnected from NATS; reconnecting", "error", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { log.Info("reconnected to NATS", "server", c.ConnectedUrlRedacted()) }),
		nats.ErrorHandler(func(_ *nats.Conn, s *nats.Subscription, err error) {
			subj := ""
			if s != nil {
				subj = s.Subject
			}
			log.Warn("NATS error", "subject", subj, "error", err)
		}),
	}
	switch {
	case n.Token != "":
		opts = append(opts, nats.Token(n.Token))
	case n.CredsFile != "":
		opts = append(opts, nats.UserCredentials(n.CredsFile))
	case n.NKeyFile != "":
		o, err := nats.NkeyOptionFromSeed(n.NKeyFile)
		if err != nil {
			return nil, fmt.Errorf("%w: nkey seed file %s: %v", ErrInvalidConfig, n.NKeyFile, err)
		}
		opts = append(opts, o)
	}
	if n.TLSCA != "" {
		opts = append(opts, nats.RootCAs(n.TLSCA))
	}
	if n.TLSCert != "" {
		opts = append(opts, nats.ClientCert(n.TLSCert, n.TLSKey))
	}
	nc, err := nats.Connect(n.URL, opts...)
	if err != nil {
		return nil, &ConnectError{URL: n.URL, Err: err}
	}
	l := &link{nc: nc, maxPayload: int(nc.MaxPayload())}
	if err := l.ensure(ctx, n.Replicas); err != nil {
		nc.Close()
		return nil, err
	}
	return l, nil
}

// ensure opens the stream and buckets, creating the missing ones with
// replicas copies. JetStream in a cluster that has just started may need a
// moment to elect its leaders: ensure retries until ctx is done.
func (l *link) ensure(ctx context.Context, replicas int) error {
	// Async publishes resolve within a timeout: a lost acknowledgement
	// must not leave a batch waiting forever (it is retried, deduped).
	js, err := jetstream.New(l.nc, jetstream.WithPublishAsyncTimeout(10*time.Second))
	if err != nil {
		return err
	}
	l.js = js
	for delay := 50 * time.Millisecond; ; delay = min(2*delay, time.Second) {
		err = l.open(ctx, replicas)
		if err == nil {
			return nil
		}
		if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
			return &ConnectError{URL: l.nc.ConnectedUrlRedacted(), Err: fmt.Errorf("%w (start the server with JetStream: `pluginpool server`, or nats-server -js)", err)}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: setting up JetStream on %s: %v", ErrConnect, l.nc.ConnectedUrlRedacted(), err)
		case <-time.After(delay):
		}
	}
}

func (l *link) open(ctx context.Context, replicas int) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var err error
	l.stream, err = l.js.Stream(ctx, streamName)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		l.stream, err = l.js.CreateStream(ctx, streamConfig(replicas))
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			l.stream, err = l.js.Stream(ctx, streamName)
		}
	}
	if err != nil {
		return fmt.Errorf("stream %s: %w", streamName, err)
	}
	if l.jobs, err = openBucket(ctx, l.js, jobsBucket, 0, replicas); err != nil {
		return err
	}
	l.workers, err = openBucket(ctx, l.js, workersBucket, workerTTL, replicas)
	return err
}

func streamConfig(replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        streamName,
		Description: "pluginpool: batches of items waiting for a worker (one subject per job)",
		Subjects:    []string{batchPrefix + "*"},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
		Duplicates:  2 * time.Minute,
	}
}

func openBucket(ctx context.Context, js jetstream.JetStream, name string, ttl time.Duration, replicas int) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, name)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: name, History: 1, TTL: ttl, Replicas: replicas, Storage: jetstream.FileStorage})
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = js.KeyValue(ctx, name)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", name, err)
	}
	return kv, nil
}

// close drains the connection: what it published is flushed first.
func (l *link) close() {
	if l == nil || l.nc == nil {
		return
	}
	// Drain flushes publishes and lets subscription handlers finish; it
	// ends on its own within the connection's drain timeout (30s default).
	if !l.nc.IsConnected() {
		l.nc.Close() // nothing can be flushed
		return
	}
	done := make(chan struct{})
	l.nc.SetClosedHandler(func(*nats.Conn) { close(done) })
	if err := l.nc.Drain(); err != nil {
		l.nc.Close()
		return
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		l.nc.Close()
	}
}
