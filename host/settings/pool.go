package settings

import "time"

// The pool keys' defaults, for what a zero field or an unset key means.
const (
	DefaultInFlight      = 2
	DefaultMaxItemBytes  = 64 << 20
	DefaultMaxAttempts   = 3
	DefaultKillGrace     = time.Second
	DefaultMaxRestarts   = 10
	DefaultRestartWindow = time.Minute
	DefaultStartTimeout  = 10 * time.Second
)

// The pool keys' upper bounds. A value past one is a typo or a
// misunderstanding, not a bigger job, and it would fail badly before
// anything useful happened: --chunk-size 1000000000000 died allocating one
// batch's item boundaries ("fatal error: out of memory"), and workers =
// 100000 starts 100000 processes. max_tasks_per_worker has none: a large
// value only means "rarely".
const (
	// WorkersLimit bounds workers. A worker is a process (~10 MB, a few
	// ms to start); 1024 is four times the cores of the largest machines,
	// room for tasks that mostly wait.
	WorkersLimit = 1024
	// ChunkSizeLimit bounds chunk_size, items per batch. A batch's item
	// boundaries are allocated when it is opened; the adaptive size never
	// goes past 16384, and 1Mi trivial items are already ~100 ms of work.
	ChunkSizeLimit = 1 << 20
	// InFlightLimit bounds in_flight. Two batches per worker hide the
	// round trip; more only put more items at the mercy of one crash.
	InFlightLimit = 64
	// MaxItemBytesLimit bounds max_item_bytes: gRPC's ceiling on one
	// message, less room for the rest of the batch.
	MaxItemBytesLimit = 1<<31 - 1 - 1<<20
	// MaxAttemptsLimit bounds max_attempts: the runs of each item are
	// counted in a byte, and a task that failed 100 times will not
	// succeed the 101st.
	MaxAttemptsLimit = 100
	// MaxRestartsLimit bounds max_restarts: the pool keeps one record per
	// restart in the window. It is high enough to mean "never degrade"
	// (TestChaos kills workers on purpose, thousands of times).
	MaxRestartsLimit = 1 << 20
	// TaskTimeoutLimit bounds task_timeout: a week. The watchdog adds
	// kill_grace to it, which must not overflow.
	TaskTimeoutLimit = 7 * 24 * time.Hour
	// KillGraceLimit bounds kill_grace: how long a cancelled task may take
	// to stop.
	KillGraceLimit = time.Hour
	// RestartWindowLimit bounds restart_window: a day.
	RestartWindowLimit = 24 * time.Hour
	// StartTimeoutLimit bounds start_timeout: a plugin that needs more
	// than an hour to start is broken.
	StartTimeoutLimit = time.Hour
	// MaxMemoryLimit bounds max_memory: 1 TiB per worker.
	MaxMemoryLimit = 1 << 40
)

// Durations of the pool keys are shown in errors like this.
const poolExample = `"200ms" or "1m30s"`

// Pool are the pool keys: the [pool] table sets them for every plugin, a
// [plugins.NAME] table overrides them for its plugin, a pipeline stage
// {plugin = "NAME", ...} for that stage. Their fields are pool.Config's;
// a cluster.Config has some of them too (chunk_size, max_item_bytes,
// max_attempts, start_timeout), which a job carries to the workers. Min 1
// where 0 would be no value at all: max_restarts = 0 must not silently
// become 10.
var Pool = []Key{
	{Name: "workers", Field: "Workers", Kind: Count, Auto: func() int64 { return min(cores(), WorkersLimit) },
		Max: WorkersLimit, Zero: "one per core",
		Flag: "workers", Short: "w", Usage: "plugin processes to start (default: the plugin's workers in the\nconfig, else one per core)",
		Doc: "plugin processes"},
	{Name: "chunk_size", Field: "ChunkSize", Kind: Count, Max: ChunkSizeLimit, Zero: "adaptive",
		Flag: "chunk-size", Usage: "items per batch (default: adaptive, a few ms of work per batch)",
		Doc: "items per batch (adaptive: a few ms of work per batch)"},
	{Name: "in_flight", Field: "InFlight", Kind: Count, Default: DefaultInFlight, Min: 1, Max: InFlightLimit,
		Doc: "batches on the wire per worker, so none idles on a round trip"},
	{Name: "max_item_bytes", Field: "MaxItemBytes", Kind: Size, Default: DefaultMaxItemBytes, Min: 1, Max: MaxItemBytesLimit,
		Doc: "largest item; a larger one fails alone"},
	{Name: "max_attempts", Field: "MaxAttempts", Kind: Count, Default: DefaultMaxAttempts, Min: 1, Max: MaxAttemptsLimit,
		Doc: "runs of a task whose worker crashed (idempotent plugins only)"},
	{Name: "task_timeout", Field: "TaskTimeout", Kind: Duration, Max: int64(TaskTimeoutLimit), Zero: "no limit", Example: poolExample,
		Doc: "per task, from when a worker starts it"},
	{Name: "kill_grace", Field: "KillGrace", Kind: Duration, Default: int64(DefaultKillGrace), Min: 1, Max: int64(KillGraceLimit), Example: poolExample,
		Doc: "then a task ignoring cancellation gets its worker killed"},
	{Name: "max_restarts", Field: "MaxRestarts", Kind: Count, Default: DefaultMaxRestarts, Min: 1, Max: MaxRestartsLimit,
		Doc: "more crash-loop restarts than this in restart_window degrade the plugin"},
	{Name: "restart_window", Field: "RestartWindow", Kind: Duration, Default: int64(DefaultRestartWindow), Min: 1, Max: int64(RestartWindowLimit), Example: poolExample,
		Doc: "the window max_restarts counts over"},
	{Name: "max_tasks_per_worker", Field: "MaxTasksPerWorker", Kind: Count, Zero: "never",
		Doc: "replace a worker after this many tasks"},
	{Name: "start_timeout", Field: "StartTimeout", Kind: Duration, Default: int64(DefaultStartTimeout), Min: 1, Max: int64(StartTimeoutLimit), Example: poolExample,
		Doc: "launch, handshake and Init of one worker"},
	{Name: "max_result_bytes", Field: "MaxResultBytes", Kind: Size, Max: MaxItemBytesLimit, Zero: "max_item_bytes",
		Doc: "largest result (with its printed lines) a task may return"},
	{Name: "max_memory", Field: "MaxMemory", Kind: Size, Max: MaxMemoryLimit, Zero: "no limit",
		Doc: "per worker, enforced by the kernel (cgroup v2 memory.max where delegated, else RLIMIT_DATA)"},
}
