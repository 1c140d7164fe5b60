package sdk

import (
	"context"
	"math"
	"os"

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
	if err := s.run(ctx, &laneStream{Lane: s.lane, end: cancel}, false); err != nil {
		s.logger.Debug("lane ended", "error", err)
	}
	s.lane.Close()
}

// laneStream is the lane as the runner's stream: when it ends, so does
// the stream's context, as gRPC cancels a Run call's.
type laneStream struct {
	*wire.Lane
	end context.CancelFunc
}

func (l *laneStream) Recv() (*workerpb.Batch, error) {
	b, err := l.Lane.Recv()
	if err != nil {
		l.end()
	}
	return b, err
}
