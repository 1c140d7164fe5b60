package pool

import "github.com/pluginpool/pluginpool/host/backend"

// Executor is backend.Executor: what a *Pool is, and a cluster's
// executor too, for code that takes either.
type Executor = backend.Executor

// A *Pool hands over Imap's results in runs too (ImapBatches), which the
// pipeline takes when it can.
var (
	_ Executor        = (*Pool)(nil)
	_ backend.Batcher = (*Pool)(nil)
)

// Result is the outcome of one item (backend.Result): its value and
// printed lines, or why it failed.
type Result = backend.Result

// FirstError summarizes results as Map's error: nil if none failed, else
// how many failed, wrapping the first failure (backend.FirstError).
func FirstError(results []Result) error { return backend.FirstError(results) }

// Info describes a running plugin, as it reported itself (backend.Info).
type Info = backend.Info
