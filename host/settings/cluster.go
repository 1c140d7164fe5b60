package settings

import "time"

// The [cluster] keys' defaults and bounds. Past them a value is a typo: an
// ack_wait of a day leaves a dead worker's batches stranded that long; a
// window of a million batches is a host that holds gigabytes.
const (
	DefaultAckWait     = 30 * time.Second
	DefaultHostTimeout = 10 * time.Second
	DefaultReplicas    = 1
	MinAckWait         = 100 * time.Millisecond
	MaxAckWait         = time.Hour
	MinHostTimeout     = 500 * time.Millisecond
	MaxHostTimeout     = time.Hour
	MaxWindow          = 4096
	// MaxReplicas: JetStream keeps at most 5 copies of a stream.
	MaxReplicas = 5
)

// Cluster are the settings of the [cluster] table. Their fields are
// cluster.Config's (ack_wait, host_timeout, window) and cluster.NATS's
// (replicas); the table's other keys (url, credentials, nkey, tls_*) say
// where the cluster is and how to log in, not how it behaves.
var Cluster = []Key{
	{Name: "ack_wait", Field: "AckWait", Kind: Duration, Default: int64(DefaultAckWait),
		Min: int64(MinAckWait), Max: int64(MaxAckWait), Span: true, Example: `"30s"`,
		Doc: "how long a worker may hold a batch without a sign of life before another gets it"},
	{Name: "host_timeout", Field: "HostTimeout", Kind: Duration, Default: int64(DefaultHostTimeout),
		Min: int64(MinHostTimeout), Max: int64(MaxHostTimeout), Span: true, Example: `"30s"`,
		Doc: "how long a job survives its host's silence before workers drop it"},
	{Name: "window", Field: "Window", Kind: Count, Max: MaxWindow, Zero: "automatic", Span: true,
		Doc: "batches a job has cut and not yet handed back"},
	{Name: "replicas", Field: "Replicas", Kind: Count, Default: DefaultReplicas, Min: 1, Max: MaxReplicas, Span: true,
		Flag: "replicas", Usage: "copies of the stream and buckets if this client creates them\n(default: [cluster] replicas, else 1)",
		Doc: "copies JetStream keeps of the stream and buckets this client creates"},
}
