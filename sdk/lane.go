package sdk

import (
	"context"
	"math"
	"os"
	"sync"

	"github.com/pluginpool/pluginpool/internal/wire"
	workerpb "github.com/pluginpool/pluginpool/sdk/proto"
)

// The lane (docs/PROTOCOL.md, "The lane"): the host passes one end of a
// socket pair, and if Describe says the plugin takes it, the Run stream's
// batches travel there as length-prefixed frames instead of over gRPC.
// The runner writes its answers from its own goroutine, and nothing waits
// for gRPC's reader and writer goroutines: W3's round trip (bench/) was
// mostly those hand-overs.

// laneEnv names the environment variable holding the descriptor.
const laneEnv = "PLUGINPOOL_LANE_FD"

// openLane takes the lane the host passed, or returns nil: no variable, a
// bad number, a descriptor that is not a socket, or PLUGINPOOL_LANE=off
// (which the host honours too: it keeps the stream on gRPC, to compare).
// Without it the plugin serves Run over gRPC. It never fails the plugin.
func openLane() *wire.Lane {
	fd, ok := inherited(laneEnv)
	if !ok {
		return nil
	}
	f := os.NewFile(uintptr(fd), "lane")
	if os.Getenv("PLUGINPOOL_LANE") == "off" {
		f.Close()
		return nil
	}
	// The host bounds what it sends (max_item_bytes, its batch sizes).
	// OpenLane keeps a close-on-exec duplicate and closes f, so processes
	// the plugin starts do not inherit the lane.
	l, err := wire.OpenLane(f, math.MaxInt32)
	if err != nil {
		return nil
	}
	// The plugin is idle between batches: through net.Conn, each batch's
	// first system call woke the runtime's sysmon thread, which then
	// polled every 20 µs through the batch (see RawSyscalls).
	l.RawSyscalls()
	return l
}

// serveLane serves the Run stream on the lane once Init has run (the host
// sends nothing before InitResponse; waiting also orders Init's settings
// before the runner reads them). A host that chose gRPC closes its end:
// the stream then ends at once, before any batch.
func (s *server) serveLane() {
	<-s.inited
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	l := &laneStream{Lane: s.lane, end: cancel, keepFrames: !s.plugin.Task.aliases(), inUse: make(map[*workerpb.Batch][]byte)}
	if err := s.run(ctx, l, false); err != nil {
		s.logger.Debug("lane ended", "error", err)
	}
	s.lane.Close()
}

// laneStream is the lane as the runner's stream: when it ends, so does
// the stream's context, as gRPC cancels a Run call's. It decodes each
// request into a batch the runner is done with, and reads it into that
// batch's frame, unless the task may keep what shares a frame's memory
// (a string input): a fresh frame and its ends cost an allocation each,
// and zeroing, for every batch, and most of the plugin's garbage
// collections (measured on W2 of bench/).
type laneStream struct {
	*wire.Lane
	end        context.CancelFunc
	keepFrames bool // frames are reused, not only batches

	mu    sync.Mutex
	inUse map[*workerpb.Batch][]byte // batches Recv returned, and the frames they are in
	free  []laneBatch                // batches the runner is done with, the last first
}

type laneBatch struct {
	b     *workerpb.Batch
	frame []byte
}

// maxKeptFrame bounds the frames a laneStream keeps for reuse; the host's
// batches are at most 1 MiB of items (its maxBatchBytes), plus their ends.
const maxKeptFrame = 2 << 20

func (l *laneStream) Recv() (*workerpb.Batch, error) {
	var lb laneBatch
	l.mu.Lock()
	if n := len(l.free); n > 0 {
		lb, l.free = l.free[n-1], l.free[:n-1]
	}
	l.mu.Unlock()
	if lb.b == nil {
		lb.b = new(workerpb.Batch)
	}
	frame, err := l.RecvInto(lb.b, lb.frame)
	if err != nil {
		l.end()
		return nil, err
	}
	l.mu.Lock()
	l.inUse[lb.b] = frame
	l.mu.Unlock()
	return lb.b, nil
}

// recycle takes back a batch Recv returned, once nothing uses it or the
// items in it any more: the runner has answered it, or it was a cancel.
func (l *laneStream) recycle(b *workerpb.Batch) {
	l.mu.Lock()
	defer l.mu.Unlock()
	frame, ok := l.inUse[b]
	if !ok {
		return
	}
	delete(l.inUse, b)
	if !l.keepFrames || cap(frame) > maxKeptFrame {
		frame = nil
	}
	l.free = append(l.free, laneBatch{b, frame})
}
