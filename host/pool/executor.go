package pool

import (
	"context"
	"iter"
)

// Executor is what runs items for the CLI and pipelines: a local *Pool
// today, and later a remote executor that serves one job from a shared
// work queue on many machines. Its methods have Pool's semantics.
type Executor interface {
	Map(ctx context.Context, items [][]byte) ([]Result, error)
	Apply(ctx context.Context, item []byte) (Result, error)
	Imap(ctx context.Context, items iter.Seq[[]byte]) iter.Seq2[int, Result]
	ImapUnordered(ctx context.Context, items iter.Seq[[]byte]) iter.Seq2[int, Result]
	Stats() Stats
	Close() error
	Terminate() error
}

var _ Executor = (*Pool)(nil)
