package backend

// Info describes a plugin as it reported itself when its worker started
// (worker.proto's Describe).
type Info struct {
	Name       string // the name the plugin gave itself
	Version    string
	Idempotent bool   // tasks are re-run after a crash only if true
	SDK        string // the SDK that built it, e.g. "go/0.1.0"
	// StartLedger says the plugin keeps the start ledger (worker.proto), so
	// a crash costs only the task that was running; without it every
	// unanswered task of a crashed worker counts as one that may have run.
	StartLedger bool
	// Lane says the plugin's batches travel on the lane, a socket pair of
	// their own, rather than gRPC (docs/PROTOCOL.md, "The lane").
	Lane bool
}

// Describer is an Executor that can say what its plugin reported about
// itself. A local pool is one (its processes all run one executable); a
// cluster's executor is not: its workers may run different builds of the
// plugin, which each worker reports in its registry record instead. Code
// that wants the description asks with a type assertion and does without
// it when the back-end cannot tell.
type Describer interface {
	Executor
	// Info returns what the plugin reported about itself at start.
	Info() Info
}
