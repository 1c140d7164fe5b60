package config

import (
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/pluginpool/pluginpool/host/cluster"
)

func TestCluster(t *testing.T) {
	f := parse(t, `
[plugins.double]
path = "bin/plugins/double"
version = " 1.2.0 "

[cluster]
url = "nats://10.0.0.1:4222,nats://10.0.0.2:4222"
credentials = "keys/pp.creds"
tls_ca = "/etc/ca.pem"
ack_wait = "5s"
host_timeout = "2s"
window = 64
replicas = 3
`)
	want := &Cluster{URL: "nats://10.0.0.1:4222,nats://10.0.0.2:4222", Credentials: dir + "/keys/pp.creds", TLSCA: "/etc/ca.pem",
		AckWait: 5 * time.Second, HostTimeout: 2 * time.Second, Window: 64, Replicas: 3, Line: 6}
	if !reflect.DeepEqual(f.Cluster, want) {
		t.Fatalf("Cluster = %+v\nwant %+v", f.Cluster, want)
	}
	if v := f.Plugins["double"].Version; v != "1.2.0" {
		t.Fatalf("version = %q", v)
	}
	if parse(t, "[plugins.double]\npath = \"d\"\n").Cluster != nil {
		t.Fatal("a file without [cluster] has a Cluster")
	}
}

func TestClusterErrors(t *testing.T) {
	_, err := Parse("pool.toml", []byte(`
[cluster]
credentials = "a.creds"
nkey = "a.nk"
ack_wait = "10ms"
host_timeout = 5
window = -1
replicas = 9
tls_cert = "c.pem"
urll = "x"
`), dir)
	got := errLines(err)
	want := []string{
		`pool.toml:2: cluster: url is required: the NATS server, e.g. url = "nats://10.0.0.1:4222"`,
		`pool.toml:2: cluster: tls_cert and tls_key go together`,
		`pool.toml:4: cluster.nkey: set credentials or nkey, not both`,
		`pool.toml:5: cluster.ack_wait: must be between 100ms and 1h0m0s, got 10ms`,
		`pool.toml:6: cluster.host_timeout: expected a duration string such as "30s", got integer 5`,
		`pool.toml:7: cluster.window: must be 0 (automatic) to 4096, got -1`,
		`pool.toml:8: cluster.replicas: must be 1 to 5, got 9`,
		`pool.toml:10: cluster.urll: unknown key (did you mean "url"?)`,
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("errors:\n%s\nwant:\n%s", join(got), join(want))
	}
}

func join(s []string) string {
	out := ""
	for _, l := range s {
		out += "  " + l + "\n"
	}
	return out
}

// config rejects exactly what package cluster rejects: both follow
// settings.Cluster.
func TestClusterBoundsMatch(t *testing.T) {
	for _, tc := range []struct {
		key    string
		lo, hi time.Duration
	}{
		{"ack_wait", cluster.MinAckWait, cluster.MaxAckWait},
		{"host_timeout", cluster.MinHostTimeout, cluster.MaxHostTimeout},
	} {
		for _, d := range []time.Duration{tc.lo - 1, tc.lo, tc.hi, tc.hi + 1} {
			_, err := Parse("pool.toml", []byte(fmt.Sprintf("[cluster]\nurl = \"nats://x\"\n%s = %q\n", tc.key, d)), dir)
			if ok := d >= tc.lo && d <= tc.hi; ok != (err == nil) {
				t.Errorf("%s = %s: %v; package cluster takes %s to %s", tc.key, d, err, tc.lo, tc.hi)
			}
		}
	}
	for _, w := range []int{cluster.MaxWindow, cluster.MaxWindow + 1} {
		_, err := Parse("pool.toml", []byte(fmt.Sprintf("[cluster]\nurl = \"nats://x\"\nwindow = %d\n", w)), dir)
		if ok := w <= cluster.MaxWindow; ok != (err == nil) {
			t.Errorf("window = %d: %v; package cluster takes up to %d", w, err, cluster.MaxWindow)
		}
	}
}
