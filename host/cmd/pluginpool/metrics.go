package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/pflag"

	"github.com/pluginpool/pluginpool/host/backend"
)

// addMetricsFlag registers --metrics-addr on fs. Commands that call
// startMetrics add it.
func addMetricsFlag(fs *pflag.FlagSet, g *globalOptions) {
	fs.StringVar(&g.metricsAddr, "metrics-addr", "", "serve Prometheus metrics at http://`HOST:PORT`/metrics while running\n(e.g. 127.0.0.1:9090; port 0 picks one, logged at --log-level info).\nWithout a HOST (:9090) it listens on every interface, open to\nother machines: give 127.0.0.1:9090 to keep it local")
}

// statsSource is what the metrics read at scrape time: a stage's
// backend.Executor, local or on a cluster.
type statsSource interface {
	Stats() backend.Stats
}

// metricsServer serves Prometheus metrics about the pools added to it, on
// its own registry (never the global one). Counters are read from
// backend.Stats when scraped, so the hot path pays nothing for them. A nil
// *metricsServer is valid and serves nothing.
type metricsServer struct {
	col  *poolCollector
	reg  *prometheus.Registry
	srv  *http.Server
	ln   net.Listener
	done chan struct{}
}

// startMetrics listens on g.metricsAddr and serves /metrics until Close.
// It returns nil, nil when the flag is empty. extraLabels name labels that
// tell apart pools of one plugin, such as a pipeline's "stage"; Add gives
// their values.
func startMetrics(g *globalOptions, extraLabels ...string) (*metricsServer, error) {
	if g.metricsAddr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", g.metricsAddr)
	if err != nil {
		return nil, usageError{fmt.Errorf("--metrics-addr: %w", err)}
	}
	col := newPoolCollector(extraLabels...)
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		col,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintln(w, "pluginpool: metrics are at /metrics")
	})
	m := &metricsServer{
		col:  col,
		reg:  reg,
		srv:  &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second},
		ln:   ln,
		done: make(chan struct{}),
	}
	go func() {
		defer close(m.done)
		_ = m.srv.Serve(ln) // ends with ErrServerClosed at Close
	}()
	g.logger().Info("serving Prometheus metrics", "url", "http://"+ln.Addr().String()+"/metrics")
	return m, nil
}

// Addr returns the address the server listens on.
func (m *metricsServer) Addr() string {
	if m == nil {
		return ""
	}
	return m.ln.Addr().String()
}

// Add adds a pool to the metrics; labelValues are the values of the
// server's extra labels, in order. A pool stays in the metrics after it
// is closed, its counters frozen, until the server closes.
func (m *metricsServer) Add(p statsSource, labelValues ...string) {
	if m == nil {
		return
	}
	m.col.add(p, labelValues)
}

// AddSet adds pools that come and go, such as a worker's plugins: stats
// is called at each scrape for their current statistics.
func (m *metricsServer) AddSet(stats func() []backend.Stats) {
	if m == nil {
		return
	}
	m.col.mu.Lock()
	defer m.col.mu.Unlock()
	m.col.sets = append(m.col.sets, stats)
}

// Register adds a collector of other metrics.
func (m *metricsServer) Register(c prometheus.Collector) {
	if m == nil {
		return
	}
	m.reg.MustRegister(c)
}

// Close stops the server, letting a scrape in progress finish for up to a
// second. Safe to call on nil and more than once.
func (m *metricsServer) Close() {
	if m == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := m.srv.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		_ = m.srv.Close()
	}
	<-m.done
}

// poolCollector is a prometheus.Collector over pool statistics.
type poolCollector struct {
	mu    sync.Mutex
	pools []collectedPool
	sets  []func() []backend.Stats

	items, retries, timeouts, restarts, latency            *prometheus.Desc
	workerTasks, workerBatches, workerRestarts, workerBusy *prometheus.Desc
	workerUp                                               *prometheus.Desc
}

type snapshot struct {
	stats  backend.Stats
	labels []string
}

type collectedPool struct {
	src    statsSource
	labels []string
}

func newPoolCollector(extra ...string) *poolCollector {
	base := append([]string{"plugin"}, extra...)
	with := func(l string) []string { return append(append([]string(nil), base...), l) }
	desc := func(name, help string, labels []string) *prometheus.Desc {
		return prometheus.NewDesc("pluginpool_"+name, help, labels, nil)
	}
	return &poolCollector{
		items:          desc("items_total", "Items finished, by result: ok (a value), failed (an error), or not_run (the pool degraded first).", with("result")),
		retries:        desc("retries_total", "Task runs repeated after a worker crash or a retry request.", base),
		timeouts:       desc("timeouts_total", "Tasks that ran past task_timeout.", base),
		restarts:       desc("restarts_total", "Worker restarts after a crash or a kill (recycling excluded).", base),
		latency:        desc("task_latency_seconds", "Estimated quantiles of one task's time in a worker since start (log2 buckets).", with("quantile")),
		workerTasks:    desc("worker_tasks_total", "Tasks answered by the worker slot, over all its processes.", with("slot")),
		workerBatches:  desc("worker_batches_total", "Batches answered by the worker slot.", with("slot")),
		workerRestarts: desc("worker_restarts_total", "Restarts of the worker slot's process.", with("slot")),
		workerBusy:     desc("worker_busy_seconds_total", "Time the worker slot had a batch to work on.", with("slot")),
		workerUp:       desc("worker_up", "1 while the worker slot has a live process, 0 while it restarts.", with("slot")),
	}
}

func (c *poolCollector) add(p statsSource, labels []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pools = append(c.pools, collectedPool{p, append([]string(nil), labels...)})
}

// Describe implements prometheus.Collector.
func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.items, c.retries, c.timeouts, c.restarts, c.latency,
		c.workerTasks, c.workerBatches, c.workerRestarts, c.workerBusy, c.workerUp,
	} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: one backend.Stats snapshot per pool.
func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	pools := append([]collectedPool(nil), c.pools...)
	sets := append([]func() []backend.Stats(nil), c.sets...)
	c.mu.Unlock()
	var snaps []snapshot
	for _, cp := range pools {
		snaps = append(snaps, snapshot{cp.src.Stats(), cp.labels})
	}
	for _, set := range sets {
		for _, s := range set() {
			snaps = append(snaps, snapshot{s, nil})
		}
	}
	for _, sn := range snaps {
		s := sn.stats
		base := append([]string{s.Plugin}, sn.labels...)
		with := func(l string) []string { return append(append([]string(nil), base...), l) }
		counter := func(d *prometheus.Desc, v float64, labels []string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
		}
		gauge := func(d *prometheus.Desc, v float64, labels []string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
		}
		counter(c.items, float64(s.Succeeded), with("ok"))
		counter(c.items, float64(s.Failed), with("failed"))
		counter(c.items, float64(s.NotRun), with("not_run"))
		counter(c.retries, float64(s.Retries), base)
		counter(c.timeouts, float64(s.Timeouts), base)
		counter(c.restarts, float64(s.Restarts), base)
		gauge(c.latency, s.P50.Seconds(), with("0.5"))
		gauge(c.latency, s.P95.Seconds(), with("0.95"))
		gauge(c.latency, s.P99.Seconds(), with("0.99"))
		for _, w := range s.Workers {
			slot := with(strconv.Itoa(w.Slot))
			counter(c.workerTasks, float64(w.Tasks), slot)
			counter(c.workerBatches, float64(w.Batches), slot)
			counter(c.workerRestarts, float64(w.Restarts), slot)
			counter(c.workerBusy, w.Busy.Seconds(), slot)
			up := 0.0
			if w.Pid != 0 {
				up = 1
			}
			gauge(c.workerUp, up, slot)
		}
	}
}
