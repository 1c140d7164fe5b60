// Package pipeline runs multi-stage pipelines: items read from a JSON Lines
// or plain-text input, or given as arguments, flow through a chain of
// executors, one per stage, and the last stage's results are written out,
// in input order by default. It owns the chaining (bounded, all stages
// busy at once), the mapping of each stage's results back to input lines
// for failure reports, the accounting of every item (succeeded, failed or
// not run), and the atomic output file. A stage is a backend.StartFunc:
// pool.Starter runs it on local processes, cluster.Starter on a cluster's
// workers, and Run knows only backend.Executor. host/config describes
// pipelines in pool.toml (see FromConfig). The CLI's map and apply are a
// pipeline of one stage.
//
//	spec, err := pipeline.FromConfig(f, pp, pool.Starter) // pp: a [pipelines.NAME] table
//	if err != nil {
//		return err
//	}
//	spec.OnFailure = func(fl *pipeline.Failure) { log.Print(fl) }
//	sum, err := pipeline.Run(ctx, spec)
//
// Stages stream into each other: stage k+1's feeder takes stage k's results
// as they come (Imap is lazy and holds a bounded window of batches),
// so the whole pipeline runs in constant memory. An item that fails in a
// stage is reported with its input line and that stage and goes no
// further; the rest go on.
//
// Measured on a 2-core machine: 1,000,000 integers through double → double
// (two workers each) take ~0.75 s for the whole `pluginpool run` process,
// with host RSS ~60 MB at 1M and at 3M items alike; two `pluginpool map`
// processes piped into each other take ~0.65 s. The pipeline's own cost is
// two uncontended mutexes per item and stage boundary.
package pipeline
