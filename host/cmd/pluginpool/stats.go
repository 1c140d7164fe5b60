package main

import (
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/pluginpool/pluginpool/host/backend"
	"github.com/pluginpool/pluginpool/internal/quote"
)

// printStats writes an executor's statistics for a run that took d
// (--stats):
//
//	double: 100000 items (99999 ok, 1 failed) in 1.25s, 80000 items/s
//	  retries 0, timeouts 0, worker restarts 0
//	  task latency p50 1.45µs, p95 2.9µs, p99 5.79µs
//	  slot  pid    tasks  batches  restarts  busy
//	  0     41101  50112  14       0         93%
//	  1     41102  49888  14       0         91%
//
// On a cluster each worker is a daemon on some machine, its pid that
// daemon's: two more columns name it, worker (its id) and host, and its
// process restarts are its own ("-").
//
// Latency is one task's time in a worker, estimated per batch from log2
// buckets: good to a factor of √2. Busy is the share of d a worker had a
// batch to work on. A pipeline calls it once per stage.
func printStats(w io.Writer, s backend.Stats, d time.Duration) {
	items := s.Succeeded + s.Failed + s.NotRun
	rate := 0.0
	if d > 0 {
		rate = float64(s.Succeeded+s.Failed) / d.Seconds()
	}
	notRun := ""
	if s.NotRun > 0 {
		notRun = fmt.Sprintf(", %d not run", s.NotRun)
	}
	fmt.Fprintf(w, "%s: %d items (%d ok, %d failed%s) in %s, %.0f items/s\n",
		s.Plugin, items, s.Succeeded, s.Failed, notRun, roundDuration(d), rate)
	fmt.Fprintf(w, "  retries %d, timeouts %d, worker restarts %d\n", s.Retries, s.Timeouts, s.Restarts)
	fmt.Fprintf(w, "  task latency p50 %s, p95 %s, p99 %s\n", roundDuration(s.P50), roundDuration(s.P95), roundDuration(s.P99))
	remote := slices.ContainsFunc(s.Workers, func(ws backend.WorkerStats) bool { return ws.ID != "" })
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if remote {
		fmt.Fprintln(tw, "  slot\tpid\ttasks\tbatches\trestarts\tbusy\tworker\thost")
	} else {
		fmt.Fprintln(tw, "  slot\tpid\ttasks\tbatches\trestarts\tbusy")
	}
	for _, ws := range s.Workers {
		busy := 0.0
		if d > 0 {
			busy = 100 * ws.Busy.Seconds() / d.Seconds()
		}
		pid := "-" // restarting, or gone
		if ws.Pid != 0 {
			pid = fmt.Sprint(ws.Pid)
		}
		if !remote {
			fmt.Fprintf(tw, "  %d\t%s\t%d\t%d\t%d\t%.0f%%\n", ws.Slot, pid, ws.Tasks, ws.Batches, ws.Restarts, busy)
			continue
		}
		host := ws.Host
		if host == "" {
			host = "-"
		}
		// A cluster's workers restart their processes unseen: "-".
		fmt.Fprintf(tw, "  %d\t%s\t%d\t%d\t-\t%.0f%%\t%s\t%s\n", ws.Slot, pid, ws.Tasks, ws.Batches, busy, quote.Text(ws.ID), quote.Text(host))
	}
	tw.Flush()
}

// roundDuration keeps three significant digits: 1.448154ms → 1.45ms.
func roundDuration(d time.Duration) time.Duration {
	for unit := time.Duration(1); unit < time.Hour; unit *= 10 {
		if d < 1000*unit {
			return d.Round(unit)
		}
	}
	return d.Round(time.Second)
}
