package bench

import (
	"context"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/pluginpool/pluginpool/bench/internal/inputs"
	"github.com/pluginpool/pluginpool/host/pool"
)

// doublePath returns bin/plugins/double (or $PLUGINPOOL_BENCH_DOUBLE, to
// compare builds of the plugin), or skips the benchmark.
func doublePath(b *testing.B) string {
	b.Helper()
	path := os.Getenv("PLUGINPOOL_BENCH_DOUBLE")
	if path == "" {
		path = filepath.Join("..", "bin", "plugins", "double")
	}
	path, err := filepath.Abs(path)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		b.Skipf("%s is missing: run `make build` first", path)
	}
	return path
}

func startPool(b *testing.B, cfg pool.Config) *pool.Pool {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := pool.Start(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Close() })
	return p
}

func checkDoubled(b *testing.B, rs []pool.Result) {
	b.Helper()
	for _, i := range []int{0, len(rs) / 2, len(rs) - 1} {
		if got, want := string(rs[i].Value), strconv.Itoa(2*i); got != want {
			b.Fatalf("item %d: got %q (err %v), want %s", i, got, rs[i].Err, want)
		}
	}
}

// BenchmarkMap1M is one Map of 1,000,000 pre-encoded ints through two
// double workers, the pool already started: workload W2 without the start
// and the encoding. The ns/item metric is the per-item cost on the wall.
func BenchmarkMap1M(b *testing.B) {
	const n = 1_000_000
	p := startPool(b, pool.Config{Path: doublePath(b), Workers: 2})
	items := inputs.Ints(n)
	ctx := context.Background()
	if _, err := p.Map(ctx, items[:10_000]); err != nil { // grow the batch size
		b.Fatal(err)
	}
	b.ReportAllocs()
	runs := 0
	for b.Loop() {
		rs, err := p.Map(ctx, items)
		if err != nil {
			b.Fatal(err)
		}
		checkDoubled(b, rs)
		runs++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(runs*n), "ns/item")
}

// BenchmarkImap1M is BenchmarkMap1M through Imap, item by item: the path
// `pluginpool map` takes for stdin (without JSON Lines parsing and
// writing).
func BenchmarkImap1M(b *testing.B) {
	const n = 1_000_000
	p := startPool(b, pool.Config{Path: doublePath(b), Workers: 2})
	items := inputs.Ints(n)
	ctx := context.Background()
	b.ReportAllocs()
	runs := 0
	for b.Loop() {
		k := 0
		for i, r := range p.Imap(ctx, iter.Seq[[]byte](slices.Values(items))) {
			if r.Err != nil || i != k {
				b.Fatalf("result %d: index %d, err %v", k, i, r.Err)
			}
			k++
		}
		if k != n {
			b.Fatalf("%d results, want %d", k, n)
		}
		runs++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(runs*n), "ns/item")
}

// BenchmarkApply is one sequential Apply round trip (workload W3), with and
// without TLS (go-plugin's AutoMTLS, pool.Config.TLS). It also reports the
// median and 99th percentile of the calls it made.
func BenchmarkApply(b *testing.B) {
	for _, tls := range []bool{false, true} {
		b.Run("tls="+strconv.FormatBool(tls), func(b *testing.B) {
			p := startPool(b, pool.Config{Path: doublePath(b), Workers: 2, TLS: tls})
			ctx := context.Background()
			for i := range 500 { // warm up
				if _, err := p.Apply(ctx, strconv.AppendInt(nil, int64(i), 10)); err != nil {
					b.Fatal(err)
				}
			}
			var lat []time.Duration
			var buf []byte
			i := 0
			for b.Loop() {
				buf = strconv.AppendInt(buf[:0], int64(i), 10)
				t0 := time.Now()
				r, err := p.Apply(ctx, buf)
				lat = append(lat, time.Since(t0))
				if err != nil {
					b.Fatal(err)
				}
				if string(r.Value) != strconv.Itoa(2*i) {
					b.Fatalf("Apply(%d) = %q", i, r.Value)
				}
				i++
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
			b.ReportMetric(float64(lat[min(len(lat)-1, len(lat)*99/100)].Nanoseconds()), "p99-ns")
		})
	}
}

// BenchmarkStart is pool.Start of two double workers followed by Close:
// the fixed cost in every `pluginpool map` (workload W5), with and without
// TLS, whose certificates each process makes as it starts.
func BenchmarkStart(b *testing.B) {
	path := doublePath(b)
	ctx := context.Background()
	for _, tls := range []bool{false, true} {
		b.Run("tls="+strconv.FormatBool(tls), func(b *testing.B) {
			for b.Loop() {
				p, err := pool.Start(ctx, pool.Config{Path: path, Workers: 2, TLS: tls})
				if err != nil {
					b.Fatal(err)
				}
				if err := p.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
