package pool

// Result is the outcome of one item.
type Result struct {
	// Value is the task's encoded result. It is nil when the task failed
	// or returned no value (a task run only for its output).
	Value []byte
	// Output holds the lines the task printed through the SDK, in order.
	Output []string
	// Err says why the item failed, or is nil. It matches one of ErrTask,
	// ErrCrashed, ErrTimeout, ErrTooLarge, ErrNotRun (the pool degraded
	// before running it; also ErrDegraded), ErrClosed or the context's
	// error with errors.Is.
	Err error
}

// Info describes a running plugin, as it reported itself.
type Info struct {
	Name       string // the name the plugin gave itself
	Version    string
	Idempotent bool   // tasks are re-run after a crash only if true
	SDK        string // the SDK that built it, e.g. "go/0.1.0"
	// StartLedger says the plugin keeps the start ledger (worker.proto), so
	// a crash costs only the task that was running; without it every
	// unanswered task of a crashed worker counts as one that may have run.
	StartLedger bool
}
