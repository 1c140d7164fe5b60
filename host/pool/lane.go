package pool

import (
	"os"

	"github.com/pluginpool/pluginpool/internal/wire"
)

// laneEnv names the descriptor of a plugin's end of its lane.
const laneEnv = "PLUGINPOOL_LANE_FD"

// newLane makes a worker's lane (docs/PROTOCOL.md, "The lane"): the
// host's end, refusing answers over maxFrame bytes, and the plugin's end
// for it to inherit. The host must close its copy of the plugin's end
// once the process has started, so that the plugin's death reads as
// end-of-file. The host's end reads and writes with raw system calls (see
// wire.Lane.RawSyscalls): an Apply's round trip, p50 of BenchmarkApply in
// three alternating pairs, 39-43 -> 35-39 µs; the host's CPU in a 1M-item
// typed Map, 2.61 -> 2.38 s over 44 Maps.
func newLane(maxFrame int) (*wire.Lane, *os.File, error) {
	hostEnd, pluginEnd, err := lanePair()
	if err != nil {
		return nil, nil, err
	}
	lane, err := wire.OpenLane(hostEnd, maxFrame)
	if err != nil {
		pluginEnd.Close()
		return nil, nil, err
	}
	lane.RawSyscalls()
	return lane, pluginEnd, nil
}
