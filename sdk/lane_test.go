//go:build unix

package sdk

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"syscall"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/pluginpool/pluginpool/internal/wire"
	workerpb "github.com/pluginpool/pluginpool/sdk/proto"
)

// serveTestLane runs task on the plugin's end of a fresh lane, as
// serveLane does, and returns the host's end, the stream and a function
// that ends the stream and waits for the runner.
func serveTestLane(t *testing.T, task Task) (*wire.Lane, *laneStream, func()) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	host, err := wire.OpenLane(os.NewFile(uintptr(fds[0]), "host"), 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	plugin, err := wire.OpenLane(os.NewFile(uintptr(fds[1]), "plugin"), 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	plugin.RawSyscalls()
	s := &server{plugin: Plugin{Name: "test", Task: task}, logger: hclog.NewNullLogger(), flush: defaultFlush}
	ctx, cancel := context.WithCancel(context.Background())
	l := &laneStream{Lane: plugin, end: cancel, keepFrames: !task.aliases(), inUse: make(map[*workerpb.Batch][]byte)}
	done := make(chan error, 1)
	go func() { done <- s.run(ctx, l, false) }()
	stop := sync.OnceFunc(func() {
		host.Close()
		<-done
		plugin.Close()
	})
	t.Cleanup(stop)
	return host, l, stop
}

// laneAnswer reads the responses to a batch of n items from the lane, and
// returns their values.
func laneAnswer(t *testing.T, host *wire.Lane, n int) []string {
	t.Helper()
	var values []string
	for len(values) < n {
		b, err := host.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if len(b.Errors) > 0 {
			t.Fatalf("errors: %v", b.Errors)
		}
		prev := uint32(0)
		for _, end := range b.Ends {
			values = append(values, string(b.Data[prev:end]))
			prev = end
		}
	}
	return values
}

// The lane's requests are decoded into the batches and frames of the ones
// before them: batches of every size, smaller and larger than the frame
// kept, and cancels in between, all come back right, and nothing stays in
// use.
func TestLaneRecyclesBatches(t *testing.T) {
	host, l, stop := serveTestLane(t, Func(func(_ context.Context, n int) (int, error) { return 2 * n, nil }))
	if !l.keepFrames {
		t.Fatal("an int task: frames are not reused")
	}
	for seq, n := range []int{1000, 10, 5000, 1, 3000, 3000} {
		b := &workerpb.Batch{Seq: uint64(seq + 1), BaseId: 1}
		for i := range n {
			b.Data = strconv.AppendInt(b.Data, int64(seq*10_000+i), 10)
			b.Ends = append(b.Ends, uint32(len(b.Data)))
		}
		if err := host.Send(b); err != nil {
			t.Fatal(err)
		}
		if err := host.Send(&workerpb.Batch{Seq: uint64(seq + 100), Cancel: true}); err != nil {
			t.Fatal(err)
		}
		values := laneAnswer(t, host, n)
		for i, v := range values {
			if want := strconv.Itoa(2 * (seq*10_000 + i)); v != want {
				t.Fatalf("batch %d, item %d: %q, want %s", seq+1, i, v, want)
			}
		}
	}
	stop()
	if len(l.inUse) != 0 || len(l.free) == 0 {
		t.Errorf("after the stream: %d batches in use, %d free; want 0 and some", len(l.inUse), len(l.free))
	}
}

// A task that keeps the strings it was given, which share the request's
// memory (codec.Decode), still has them intact after later batches: their
// frames are not reused.
func TestLaneKeepsFramesOfStrings(t *testing.T) {
	var kept []string // the runner's; read after stop
	host, l, stop := serveTestLane(t, Func(func(_ context.Context, s string) (string, error) {
		kept = append(kept, s)
		return kept[0], nil // the first item ever
	}))
	if l.keepFrames {
		t.Fatal("a string task: frames are reused")
	}
	for seq := range 5 {
		b := &workerpb.Batch{Seq: uint64(seq + 1), BaseId: 1}
		for i := range 100 {
			b.Data = fmt.Appendf(b.Data, `"batch %d item %d"`, seq, i)
			b.Ends = append(b.Ends, uint32(len(b.Data)))
		}
		if err := host.Send(b); err != nil {
			t.Fatal(err)
		}
		for i, v := range laneAnswer(t, host, 100) {
			if v != `"batch 0 item 0"` {
				t.Fatalf("batch %d, item %d: %s; the first string changed", seq+1, i, v)
			}
		}
	}
	stop()
	for i, s := range kept {
		if want := fmt.Sprintf("batch %d item %d", i/100, i%100); s != want {
			t.Fatalf("kept string %d is %q, want %q", i, s, want)
		}
	}
}
