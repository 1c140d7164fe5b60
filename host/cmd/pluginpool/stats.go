package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/pluginpool/pluginpool/host/pool"
)

// printStats writes a pool's statistics for a run that took d.
func printStats(w io.Writer, s pool.Stats, d time.Duration) {
	items := s.Succeeded + s.Failed
	rate := float64(items) / d.Seconds()
	fmt.Fprintf(w, "%s: %d items (%d ok, %d failed) in %s, %.0f items/s; %d retries, %d timeouts, %d restarts\n",
		s.Plugin, items, s.Succeeded, s.Failed, d.Round(time.Millisecond), rate, s.Retries, s.Timeouts, s.Restarts)
	fmt.Fprintf(w, "task latency p50 %s, p95 %s, p99 %s\n", s.P50, s.P95, s.P99)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  slot\tpid\ttasks\tbatches\trestarts\tbusy")
	for _, ws := range s.Workers {
		busy := 0.0
		if d > 0 {
			busy = 100 * ws.Busy.Seconds() / d.Seconds()
		}
		fmt.Fprintf(tw, "  %d\t%d\t%d\t%d\t%d\t%.0f%%\n", ws.Slot, ws.Pid, ws.Tasks, ws.Batches, ws.Restarts, busy)
	}
	tw.Flush()
}
