// Package bench holds pluginpool's benchmarks against real plugin
// processes: `go test -bench . ./bench/` for the library's hot paths, and
// `make bench` (bench/cmd/bench) for the side-by-side table against
// Python's multiprocessing. The SDK codec has its own micro-benchmarks in
// sdk/.
//
// These benchmarks run the double plugin that `make build` puts in
// bin/plugins/double, and skip when it is missing. Never read figures from
// a -race build: it is ~10x slower.
package bench
