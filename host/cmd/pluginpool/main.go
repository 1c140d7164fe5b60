// Command pluginpool runs plugins over many items in parallel, from the
// shell and from pool.toml pipelines:
//
//	pluginpool map double 1 2 3 4 5        # 2 4 6 8 10, one per line
//	seq 1 100000 | pluginpool map double   # JSON Lines in, JSON Lines out
//	pluginpool apply double 21             # 42
//	pluginpool run                         # the default pipeline in pool.toml
//
// stdout carries data only; errors, logs and progress go to stderr. The exit
// status is 0 when every item succeeded, 1 when some failed, 2 for a bad
// command line or config, 3 when a plugin could not start, and 128+N after
// signal N (130 for Ctrl-C, 141 when stdout was closed early).
//
// Inside, commands are thin: they resolve where the work runs (site.go:
// this machine's processes or a cluster's workers), hand a pipeline.Spec to
// job.go, which runs and reports it in the command's words (map and apply
// are a pipeline of one stage), and return an error; exit.go's status is
// the one place an error becomes an exit status.
package main

import (
	"context"
	"math"
	"os"
	"runtime/debug"
)

func main() {
	// A run's live heap is small (a few windows of batches) but it
	// allocates fast: the default GOGC=100 meant ~20 collections in a
	// 1M-line map, with write barriers on for most of it. Collect less
	// often, but no later than at 40 MiB, so streaming stays within its
	// memory budget (W6 in bench/: 64 MiB RSS).
	if !envTunesGC() {
		debug.SetGCPercent(400)
		debug.SetMemoryLimit(jobMemoryLimit)
	}
	os.Exit(int(Main(context.Background(), os.Args[1:], StdIO())))
}

// jobMemoryLimit is the soft memory limit main sets for a run (map, apply,
// run) when the environment sets neither GOGC nor GOMEMLIMIT.
const jobMemoryLimit = 40 << 20

// envTunesGC says the environment chose the GC settings (GOGC or
// GOMEMLIMIT), which main and daemonMemory then leave alone.
func envTunesGC() bool { return os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" }

// daemonMemory lifts jobMemoryLimit for the long-running commands (worker,
// server), unless the environment chose the GC settings. Their heaps hold
// what several jobs have in flight, not one stream's window: a worker and
// a server each measured ~60 MiB RSS serving W8, and under the 40 MiB
// limit collected without pause; W8 (1M items, one worker) took 0.39 s
// with it, 0.32 s with GOGC=400 alone (medians of 15 alternating runs).
func daemonMemory() {
	if !envTunesGC() {
		debug.SetMemoryLimit(math.MaxInt64)
	}
}
