// Package pool runs one plugin's worker pool: it starts N plugin processes
// through hashicorp/go-plugin, feeds them batches of items over a gRPC
// stream each, and hands back one result per item, in input order for Map
// and Imap, as completed for ImapUnordered.
//
//	p, err := pool.Start(ctx, pool.Config{Path: "bin/plugins/double"})
//	if err != nil {
//		return err
//	}
//	defer p.Close()
//	results, err := p.Map(ctx, [][]byte{[]byte("1"), []byte("2"), []byte("3")})
//
// A *Pool is the local back-end of package backend: it implements
// backend.Executor, and Result, Stats and the sentinel errors are
// backend's, under the pool's names (pool.ErrTask is backend.ErrTask), so
// code written against either works with both back-ends. Starter makes
// the backend.StartFunc pipelines and the CLI start a pool with.
//
// Items and results are opaque bytes to the pool (JSON, by the SDK's
// convention); the pool never decodes them. Typed wraps a pool (or any
// Executor) in typed calls that encode and decode them with the SDK's
// codec:
//
//	ys, err := pool.Typed[int, int](p).Map(ctx, []int{1, 2, 3}) // [2 4 6]
//
// Every item gets exactly one Result: a value, an error saying why it
// failed, or, if the pool degraded before running it, ErrNotRun (counted
// apart: those items share one cause). A failure never loses or reorders another item's result.
//
// The pool supervises its workers. A worker that crashes is replaced (with
// exponential backoff), and the plugin's start ledger (sdk/proto) tells the
// pool which task it died under: the tasks it had not started run again
// elsewhere, at no cost; the task it was running, and tasks that finished
// but whose results died with it, count a run and run again only if the
// plugin declares itself idempotent, up to MaxAttempts runs; a task that
// was running during a crash runs alone next time. crash.go holds the
// whole policy. A task that runs past TaskTimeout is cancelled, and if it
// ignores that its worker is killed after KillGrace: that task fails once
// with a *TimeoutError, the rest run on. More than MaxRestarts restarts
// within RestartWindow, each after a worker that failed to start or died
// before completing a task, mark the pool degraded: pending and new items
// resolve as not run rather than the pool respawning forever; workers that
// die while making progress are replaced however often.
//
// The pool owns its processes (README, "Security model"): on Linux each
// worker leads a process group of its own, in a cgroup of its own where
// the machine delegates one, with stdin from /dev/null and the kernel's
// parent-death signal; whenever a worker ends, its whole tree is killed,
// and a watcher process per pool does the same if the host is SIGKILLed.
// Sockets live in a directory only the host's user can enter; with SHA256
// set, workers run a private copy of exactly the bytes that were checked;
// MaxMemory and MaxResultBytes bound what a worker may take.
//
// Inside, each worker has a sender and a receiver goroutine owned by a
// supervisor goroutine per slot; batches are cut when a worker has room for
// one, sized from the observed per-item time (a few milliseconds of work),
// and at most InFlight batches ride each stream. The files follow those
// concerns:
//
//	pool.go        Start, Close, Terminate: the pool's states
//	map.go         Map, Apply, Imap, ImapUnordered, ImapBatches; job.go, feed.go, batch.go their items
//	dispatch.go    what a worker is sent next (nextRequest, cut, batch sizing)
//	answer.go      what comes back: checked (values.go), delivered, resolved
//	supervisor.go  a slot's life: start, serve, restart with backoff, degrade
//	worker.go      one worker generation: launch (handshake, Describe, Init), its two loops, its end
//	proc.go        the plugin process: started (command.go), watched and reaped with its tree (sandbox.go, cgroup_*.go, watcher.go)
//	output.go      its stdout and stderr: stray lines forwarded, the tail a crash report quotes (logline.go: its log records)
//	ledger.go      the start ledger the plugin keeps, read after a crash
//	retire.go      a dead worker's items, settled by crash.go's pure policy (table tests)
//	watchdog.go    task_timeout
package pool
