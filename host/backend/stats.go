package backend

import "time"

// Stats is a snapshot of an executor's counters since it started.
type Stats struct {
	// Plugin names the plugin the executor runs.
	Plugin    string
	Succeeded int64 // items that returned a result
	Failed    int64 // items that resolved to an error, NotRun excluded
	NotRun    int64 // items the executor did not run because it degraded (ErrNotRun)
	Retries   int64 // runs of tasks that had run before: after a crash that cost a run, a retry request, a redelivery
	Timeouts  int64 // tasks past their timeout
	Restarts  int64 // worker process restarts (recycling excluded); 0 where the back-end does not see them
	// Workers describes each worker that served the executor.
	Workers []WorkerStats
	// Latency percentiles of one task's time in a worker, estimated per
	// batch as its time at the head of the worker's queue over its items.
	P50, P95, P99 time.Duration
}

// WorkerStats describes one worker of an executor: a slot of a local
// pool, whose plugin process is replaced when it dies, or a worker of a
// cluster, a daemon on some machine serving the plugin with processes of
// its own.
type WorkerStats struct {
	// Slot numbers the worker within the executor, from 0: a local pool's
	// slot; on a cluster, the order in which its workers first answered.
	Slot int
	// ID names a cluster's worker ("b-2210-x8Qw1z"); "" for a local slot,
	// which its Slot names.
	ID string
	// Host is the machine a cluster's worker runs on, as it names itself;
	// "" for a local slot (this machine).
	Host string
	// Pid is the worker's process on Host: a local slot's plugin process
	// (0 while it restarts), a cluster worker's daemon (0 once it left).
	Pid int
	// Tasks counts the tasks it answered, Batches the batches.
	Tasks, Batches int64
	// Restarts counts a local slot's process restarts. A cluster's
	// workers restart their processes themselves, unseen: 0.
	Restarts int64
	// Busy is the time it had a batch of this executor to work on.
	Busy time.Duration
}
