package cluster

import (
	"context"
	"errors"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go/jetstream"
)

// The sweep deletes what a reap cut short left behind: a job's consumer
// and batches without its record. A job with a record is left alone.
func TestSweepDeletesOrphans(t *testing.T) {
	ctx := context.Background()
	s, err := StartServer(ctx, ServerConfig{Listen: "127.0.0.1:0", StoreDir: t.TempDir(), Logger: hclog.NewNullLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown()
	l, err := dial(ctx, NATS{URL: s.ClientURL(), Replicas: 1}, "test", hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer l.close()
	for _, id := range []string{"orphan", "alive"} {
		if _, err := l.stream.CreateConsumer(ctx, jetstream.ConsumerConfig{Durable: consumerName(id), FilterSubject: batchSubject(id), AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if _, err := l.js.Publish(ctx, batchSubject(id), []byte("x")); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := l.jobs.Create(ctx, "alive", []byte(`{"id":"alive"}`)); err != nil {
		t.Fatal(err)
	}
	(&janitor{l: l, log: hclog.NewNullLogger()}).sweep(ctx, 0)

	if _, err := l.stream.Consumer(ctx, consumerName("orphan")); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Fatalf("the orphan's consumer: %v, want it deleted", err)
	}
	if _, err := l.stream.Consumer(ctx, consumerName("alive")); err != nil {
		t.Fatalf("the live job's consumer: %v", err)
	}
	info, err := l.stream.Info(ctx, jetstream.WithSubjectFilter(batchPrefix+">"))
	if err != nil {
		t.Fatal(err)
	}
	if got := info.State.Subjects; got[batchSubject("orphan")] != 0 || got[batchSubject("alive")] != 3 {
		t.Fatalf("batches left: %v; want the orphan's purged and the live job's kept", got)
	}
}
