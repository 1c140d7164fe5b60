package pool

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/runner"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/experimental"
	"google.golang.org/grpc/status"

	"github.com/pluginpool/pluginpool/internal/wire"
	"github.com/pluginpool/pluginpool/sdk"
	workerpb "github.com/pluginpool/pluginpool/sdk/proto"
)

// workerState is a worker generation's life: starting → running →
// stopping → stopped, changed only under Pool.mu.
type workerState int

const (
	workerStarting workerState = iota // process launched, not yet serving
	workerRunning                     // taking batches
	workerStopping                    // ending: its loops are winding down
	workerStopped                     // process gone, in-flight work requeued
)

// A worker is one generation of one slot: one process, one Run stream, a
// sender and a receiver goroutine. go-plugin never restarts a process, so
// a replacement is a new worker.
type worker struct {
	p      *Pool
	slot   int
	pid    int
	client *plugin.Client
	cmd    *exec.Cmd // what to run: launch builds it, proc runs it
	proc   *proc     // the process, once go-plugin asked for it
	rpc    workerpb.WorkerClient
	stream runStream
	lane   *wire.Lane      // the stream, when it is the lane; nil on gRPC
	msg    workerpb.Batch  // on the lane, the request being sent: whoever sends owns it
	toRead chan struct{}   // cap 1: on the lane, recvLoop may have answers to read
	ctx    context.Context // the stream's; cancelled when the worker ends
	cancel context.CancelFunc
	stderr *tail
	ledger *ledgerFile // the start ledger, if the plugin keeps it; else nil
	loops  sync.WaitGroup

	// Guarded by Pool.mu.
	state      workerState
	reason     error    // why it ended
	memory     bool     // it died for exceeding MaxMemory
	inflight   []*batch // on the wire, oldest first
	cancels    []uint64 // batches to cancel, sent by the sender
	seq        uint64
	headSince  time.Time // when inflight[0] reached the head of the plugin's queue
	progress   time.Time // last answer, or the head's start: the timeout clock without a ledger
	tasks      int       // tasks sent
	sending    bool      // the sender holds a message it has not sent yet
	direct     bool      // a caller is sending this worker a batch (sendDirect)
	directWait bool      // the sender waits for that send to end
	callerRead bool      // a caller reads the lane's answers (readDirect), not recvLoop
	exited     bool      // the process has exited: on the lane, recvLoop reads to its end
	answered   int       // items answered
	watch      watch     // the watchdog's view of the ledger
}

// runStream is a worker's Run stream: gRPC's Run call, or the lane
// (docs/PROTOCOL.md), which carries the same messages.
type runStream interface {
	Send(*workerpb.Batch) error
	Recv() (*workerpb.Batch, error)
}

// message is where the worker's next request is built: on the lane, its
// own, reused (Lane.Send keeps nothing, and one send is in progress at a
// time: the sender's, or a caller's between takeIdle and sendDirect);
// nil, a new one, on gRPC, whose SendMsg may keep the message.
func (w *worker) message() *workerpb.Batch {
	if w.lane == nil {
		return nil
	}
	return &w.msg
}

// errRecycle ends a worker that ran max_tasks_per_worker tasks.
var errRecycle = errors.New("recycled after max_tasks_per_worker tasks")

// killedError ends a worker the watchdog killed because a task ignored its
// timeout.
type killedError struct {
	task uint64 // the task's id, from the start ledger; 0 without one
}

func (e *killedError) Error() string { return "killed: a task ran past task_timeout + kill_grace" }

// launch starts a process for slot and brings it to serving: handshake,
// Describe, Init, Run stream.
func (p *Pool) launch(slot int) (*worker, error) {
	cfg := &p.cfg
	var w *worker
	var ledger *ledgerFile
	var lane *wire.Lane
	fail := func(err error, t *tail) (*worker, error) {
		ledger.close()
		if lane != nil {
			lane.Close()
		}
		se := &StartError{Plugin: cfg.Name, Path: cfg.Path, Slot: slot, Err: err}
		if t != nil {
			se.Stderr = t.lines()
		}
		// Measured: a Go plugin with gRPC needs ~128 MiB of RLIMIT_DATA to
		// start, the race detector's runtime ~400; under 32 MiB a Go test
		// binary died of a segmentation fault without a word.
		limit := FormatSize(cfg.MaxMemory)
		switch {
		case p.sb.memory == memoryCgroup && w != nil && w.proc != nil && w.proc.oomKilled():
			se.Err = fmt.Errorf("%w as it started: max_memory %s (cgroup memory.max) is too small to start in", ErrMaxMemory, limit)
		case p.sb.memory != memoryRlimit || !errors.Is(err, ErrHandshake):
		case slices.ContainsFunc(se.Stderr, outOfMemory):
			se.Err = fmt.Errorf("%w as it started: max_memory %s, enforced here as RLIMIT_DATA (which counts each thread's 8 MiB stack), is too small to start in; try 256MiB or more", ErrMaxMemory, limit)
		default:
			se.Err = fmt.Errorf("%w; max_memory %s is enforced here as RLIMIT_DATA, which counts each thread's 8 MiB stack: if that is too small to start in, try 256MiB or more", err, limit)
		}
		return nil, se
	}
	// A verified copy was checked when the pool started; the path itself
	// is checked at every start, so a plugin removed meanwhile is named.
	if p.sb.exe == cfg.Path {
		if err := checkExecutable(cfg.Path); err != nil {
			return fail(err, nil)
		}
	}
	// A .py plugin runs with an interpreter (command.go), which reads the
	// script the sandbox verified.
	path, args, env, err := p.command.resolve(p.killCtx, p.sb.exe, cfg, pluginEnv(cfg, p.log.GetLevel()), p.log)
	if err != nil {
		return fail(err, nil)
	}
	cmd := exec.Command(path, args...)
	cmd.Env = env
	// The start ledger (crash.go). Without one, the plugin is told so and
	// every unanswered item it dies with counts as maybe run. proc runs
	// cmd's ExtraFiles and environment as they are.
	ledger, err = newLedger()
	if err != nil {
		p.log.Debug("no start ledger", "error", err)
		cmd.Env = append(cmd.Env, ledgerEnv+"=")
	} else {
		cmd.ExtraFiles = []*os.File{ledger.f}
		cmd.Env = append(cmd.Env, ledgerEnv+"="+ledgerFD)
	}
	// The lane, offered unless the plugin's traffic must all go through
	// TLS; used if the plugin takes it.
	var laneEnd *os.File
	if !cfg.TLS && p.lanes {
		if lane, laneEnd, err = newLane(maxMessage(cfg)); err != nil {
			p.log.Debug("no lane", "error", err)
		} else {
			cmd.ExtraFiles = append(cmd.ExtraFiles, laneEnd)
			cmd.Env = append(cmd.Env, laneEnv+"="+strconv.Itoa(2+len(cmd.ExtraFiles)))
		}
	}

	w = &worker{p: p, slot: slot, cmd: cmd, toRead: make(chan struct{}, 1)}
	// The pid of w.proc: set before any output can arrive, unlike w.pid.
	tag := func() string { return fmt.Sprintf("%s[%d] pid %d", cfg.Name, slot, w.proc.pid) }
	w.stderr = newTail(20, newLineWriter(cfg.Stderr, tag, "stderr"))
	w.client = plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig: sdk.Handshake,
		Plugins:         plugin.PluginSet{sdk.PluginName: clientPlugin{}},
		// go-plugin gives a RunnerFunc's plugin a socket directory of its
		// own inside TempDir (the pool's private one) and the command's
		// environment; the proc runs cmd with it.
		RunnerFunc: func(_ hclog.Logger, gp *exec.Cmd, socketDir string) (runner.Runner, error) {
			cmd.Env = append(cmd.Env, gp.Env...)
			w.proc = &proc{template: cmd, ctx: p.killCtx, sb: p.sb, socketDir: socketDir, maxMemory: cfg.MaxMemory,
				log: p.log.With("slot", slot), output: newLineWriter(cfg.Stderr, tag, "stdout")}
			return w.proc, nil
		},
		UnixSocketConfig: &plugin.UnixSocketConfig{TempDir: p.sb.dir},
		AutoMTLS:         cfg.TLS,
		SkipHostEnv:      true, // cmd.Env already holds what the plugin may see
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		StartTimeout:     cfg.StartTimeout,
		Logger:           &pluginLogger{Logger: p.log.ResetNamed("go-plugin"), plugin: p.log, w: w},
		Stderr:           w.stderr,
		SyncStdout:       newLineWriter(cfg.Stderr, tag, "stdout"),
		SyncStderr:       newLineWriter(cfg.Stderr, tag, "stderr"),
		GRPCDialOptions: []grpc.DialOption{
			grpc.WithInitialWindowSize(windowSize),
			grpc.WithInitialConnWindowSize(windowSize),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMessage(cfg)), grpc.MaxCallSendMsgSize(math.MaxInt32),
				grpc.ForceCodecV2(wire.Codec)),
			experimental.WithBufferPool(wire.Pool),
			grpc.WithReadBufferSize(bufferSize),
			grpc.WithWriteBufferSize(bufferSize),
		},
	})
	rpcClient, err := w.client.Client()
	if laneEnd != nil {
		laneEnd.Close() // the process has its own, or never will
	}
	if w.proc != nil {
		w.pid = w.proc.pid
	}
	if err != nil {
		w.client.Kill()
		w.drained()
		return fail(handshakeError(err, w.proc.state()), w.stderr)
	}
	raw, err := rpcClient.Dispense(sdk.PluginName)
	if err != nil {
		w.client.Kill()
		return fail(fmt.Errorf("%w: %v", ErrHandshake, err), w.stderr)
	}
	w.rpc = raw.(workerpb.WorkerClient)

	ctx, cancel := context.WithTimeout(p.killCtx, cfg.StartTimeout)
	defer cancel()
	desc, err := w.rpc.Describe(ctx, &workerpb.DescribeRequest{})
	if err == nil {
		_, err = w.rpc.Init(ctx, &workerpb.InitRequest{
			Config:        cfg.PluginConfig,
			Slot:          uint32(slot),
			TaskTimeoutMs: uint64(cfg.TaskTimeout / time.Millisecond),
			// The plugin fails an item whose result is larger; the host
			// checks again (maxMessage, resolveAnswer).
			MaxResultBytes: uint64(cfg.MaxResultBytes),
			// The watchdog's clock assumes this interval: send it rather
			// than rely on the plugin's default.
			FlushIntervalMs: uint64(flushInterval / time.Millisecond),
		})
		if err != nil {
			err = fmt.Errorf("%w: %s", ErrInit, status.Convert(err).Message())
		}
	} else {
		err = fmt.Errorf("%w: Describe: %s", ErrHandshake, status.Convert(err).Message())
	}
	if err == nil {
		w.ctx, w.cancel = context.WithCancel(p.killCtx)
		if desc.Lane && lane != nil {
			// Ending the worker closes the lane, as cancelling w.ctx
			// ends a gRPC stream: the plugin reads end-of-file.
			w.stream, w.lane = lane, lane
			// deliver keeps nothing of an answer but its Data and Ends.
			lane.ReuseBatches()
			context.AfterFunc(w.ctx, func() { lane.Close() })
		} else {
			if lane != nil {
				lane.Close()
				lane = nil
			}
			w.stream, err = w.rpc.Run(w.ctx)
			if err != nil {
				w.cancel()
				err = fmt.Errorf("%w: opening the Run stream: %v", ErrHandshake, err)
			}
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w: no answer within %s (start_timeout)", ErrStartTimeout, cfg.StartTimeout)
		}
		w.kill()
		return fail(err, w.stderr)
	}
	if desc.StartLedger {
		w.ledger = ledger
	} else {
		ledger.close()
	}
	w.stderr.serve()
	p.mu.Lock()
	if p.info.Name == "" {
		p.info = Info{Name: desc.Name, Version: desc.Version, Idempotent: desc.Idempotent, SDK: desc.Sdk, StartLedger: w.ledger != nil, Lane: lane != nil}
	}
	p.mu.Unlock()
	return w, nil
}

// windowSize is the gRPC flow-control window on both sides. Batches are up
// to a few MiB; the 64 KiB default costs round trips on every one.
const windowSize = 4 << 20

// bufferSize is gRPC's socket read and write buffer on both sides: a batch
// is ~100 KiB; the 32 KiB default takes several syscalls per batch.
const bufferSize = 256 << 10

// pluginEnv is the plugin's environment before go-plugin's: the host's
// (all of it, or only PassEnv's variables when SkipHostEnv), then Env,
// then the SDK's log level.
func pluginEnv(cfg *Config, level hclog.Level) []string {
	var env []string
	if cfg.SkipHostEnv {
		for _, k := range cfg.PassEnv {
			if v, ok := os.LookupEnv(k); ok {
				env = append(env, k+"="+v)
			}
		}
	} else {
		env = os.Environ()
	}
	env = append(env, cfg.Env...)
	return append(env, "PLUGINPOOL_LOG_LEVEL="+level.String())
}

// maxMessage is the largest message the host accepts from a plugin: one
// result of MaxResultBytes, with room for the rest of its batch. The SDK
// answers in several messages rather than exceed it (worker.proto,
// max_result_bytes); a plugin that sends more breaks its stream.
func maxMessage(cfg *Config) int {
	return int(min(int64(cfg.MaxResultBytes)+messageSlack, math.MaxInt32))
}

// messageSlack is what a response may hold beyond its results: item
// boundaries, error messages and printed lines, which the SDK counts
// against the same budget, and protobuf framing.
const messageSlack = 1 << 20

// handshakeError explains go-plugin's start errors; ps is how the process
// ended, if it did.
func handshakeError(err error, ps *os.ProcessState) error {
	msg := err.Error()
	first, _, _ := strings.Cut(msg, "\n")
	unrecognized, printed := strings.CutPrefix(first, "Unrecognized remote plugin message:")
	switch {
	case strings.Contains(msg, "timeout while waiting for plugin to start"):
		return fmt.Errorf("%w: no handshake within start_timeout", ErrStartTimeout)
	case strings.Contains(msg, "plugin exited before we could connect"),
		// go-plugin's words when stdout closed before a line came, which
		// is how a process that exits at once usually ends up: it wrote
		// nothing, so "must not write to stdout" below would mislead.
		strings.Contains(msg, "Failed to read any lines from plugin's stdout"),
		printed && strings.TrimSpace(unrecognized) == "":
		exit := "it exited"
		if ps != nil {
			exit = "it exited (" + ps.String() + ")"
		}
		return fmt.Errorf("%w: %s before the handshake; does it serve through the pluginpool SDK (sdk.Serve in Go, pluginpool.serve in Python)?", ErrHandshake, exit)
	case printed:
		return fmt.Errorf("%w: %s; a plugin must not write to stdout before it serves (sdk.Serve, pluginpool.serve)", ErrHandshake, first)
	case strings.Contains(msg, "Incompatible API version"):
		return fmt.Errorf("%w: it speaks another protocol version: %v", ErrHandshake, err)
	}
	return fmt.Errorf("%w: %v", ErrHandshake, err)
}

// clientPlugin is the host half of go-plugin's GRPCPlugin.
type clientPlugin struct{ plugin.NetRPCUnsupportedPlugin }

func (clientPlugin) GRPCServer(*plugin.GRPCBroker, *grpc.Server) error {
	return errors.New("pool: the Worker service is served by plugins")
}

func (clientPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, conn *grpc.ClientConn) (any, error) {
	return workerpb.NewWorkerClient(conn), nil
}

// pluginLogger passes the plugin's own log lines (go-plugin logs them on a
// sub-logger named after the executable) to the pool's logger tagged with
// slot and pid, and demotes go-plugin's chatter about process life, which
// the pool reports itself, to debug.
type pluginLogger struct {
	hclog.Logger
	plugin hclog.Logger
	w      *worker
}

// Named is the plugin's sub-logger only for the name go-plugin gives its
// stderr (the executable's base name, client.go logStderr): go-plugin also
// names a "stdio" logger for its own chatter, such as the warning that a
// plugin killed during its handshake had no stdio service.
func (l *pluginLogger) Named(name string) hclog.Logger {
	if l.w.proc == nil || name != filepath.Base(l.w.proc.Name()) {
		return l
	}
	return l.plugin.With("slot", l.w.slot, "pid", l.w.proc.pid)
}

func (l *pluginLogger) Log(_ hclog.Level, msg string, args ...any) { l.Logger.Debug(msg, args...) }
func (l *pluginLogger) Info(msg string, args ...any)               { l.Logger.Debug(msg, args...) }
func (l *pluginLogger) Warn(msg string, args ...any)               { l.Logger.Debug(msg, args...) }
func (l *pluginLogger) Error(msg string, args ...any)              { l.Logger.Debug(msg, args...) }

// run serves batches until the worker ends, then reaps the process. It
// returns once both loops have exited and the process is gone.
func (w *worker) run() {
	w.loops.Add(2)
	go w.sendLoop()
	go w.recvLoop()
	if w.lane != nil {
		// The lane is read only while answers are due (recvLoop): a
		// process that dies idle is noticed here, and recvLoop reads
		// to the end of what it wrote.
		select {
		case <-w.ctx.Done():
		case <-w.proc.exited:
			w.p.mu.Lock()
			w.exited = true
			w.wakeReader()
			w.p.mu.Unlock()
		}
	}
	<-w.ctx.Done()
	w.loops.Wait()
	w.p.mu.Lock()
	graceful := w.reason == errRecycle || (errors.Is(w.reason, ErrClosed) && w.p.state == poolClosed)
	w.p.mu.Unlock()
	if graceful {
		w.client.Kill() // asks the plugin to exit, kills it after 2 s
	} else {
		w.kill()
	}
}

// kill ends the process now and waits for go-plugin's goroutines.
func (w *worker) kill() {
	if w.cancel != nil {
		w.cancel()
	}
	if w.proc != nil {
		w.proc.kill()
	}
	w.client.Kill()
}

// drained waits, briefly, until go-plugin has read all the process's
// stderr (it marks the process exited only after that), so a start error
// can quote its last lines: go-plugin can fail a handshake on the first
// stdout line, before the stderr of the same moment has been read.
func (w *worker) drained() {
	for deadline := time.Now().Add(500 * time.Millisecond); !w.client.Exited() && time.Now().Before(deadline); {
		time.Sleep(2 * time.Millisecond)
	}
}

// exitStatus says how the process ended, once it has.
func (w *worker) exitStatus() string {
	if ps := w.proc.state(); ps != nil {
		return ps.String()
	}
	return "stream closed"
}

// overMemory reports whether the worker died for exceeding MaxMemory:
// the kernel's OOM killer struck its cgroup or, under RLIMIT_DATA (which
// does not kill: allocations fail), its runtime said it ran out of memory
// as it died. Call it once the process has been reaped.
func (w *worker) overMemory() bool {
	switch w.p.sb.memory {
	case memoryCgroup:
		return w.proc.oomKilled()
	case memoryRlimit:
		return slices.ContainsFunc(w.stderr.lines(), outOfMemory)
	}
	return false
}

// outOfMemory reports whether a stderr line is a runtime dying for want of
// memory: Go's fatal errors (out of memory, or of memory for its own
// structures at start), the race detector's, Python's uncaught
// MemoryError, C++'s std::bad_alloc.
func outOfMemory(line string) bool {
	if fatal, ok := strings.CutPrefix(line, "fatal error: "); ok {
		return strings.Contains(fatal, "out of memory") || strings.Contains(fatal, "cannot allocate memory") ||
			strings.Contains(fatal, "failed to reserve")
	}
	return strings.Contains(line, "ThreadSanitizer failed to allocate") ||
		line == "MemoryError" || strings.HasPrefix(line, "MemoryError:") ||
		strings.Contains(line, "std::bad_alloc")
}

// end stops the worker for reason; the first reason wins.
func (w *worker) end(reason error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	w.endLocked(reason)
}

func (w *worker) endLocked(reason error) {
	if w.state != workerRunning && w.state != workerStarting {
		return
	}
	w.state = workerStopping
	w.reason = reason
	if w.cancel != nil {
		w.cancel()
	}
	w.p.cond.Broadcast()
}

// sendLoop sends the batches and cancels the dispatcher hands this worker.
func (w *worker) sendLoop() {
	defer w.loops.Done()
	for {
		msg := w.p.nextRequest(w)
		if msg == nil {
			return
		}
		if err := w.stream.Send(msg); err != nil {
			w.end(streamError(err))
			return
		}
	}
}

// recvLoop receives answers and delivers their results.
func (w *worker) recvLoop() {
	defer w.loops.Done()
	for (w.lane == nil || w.p.awaitAnswers(w)) && w.receive() {
	}
}

// receive reads one answer from w's stream and delivers it. It reports
// false when w is not to be read on: its stream broke or the answer broke
// the protocol (w is then ended), or a read on the lane was interrupted
// (Lane.Interrupt: w goes on, read by another).
func (w *worker) receive() bool {
	resp, err := w.stream.Recv()
	if err != nil {
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			w.end(streamError(err))
		}
		return false
	}
	if err := w.p.deliver(w, resp); err != nil {
		w.end(err)
		return false
	}
	return true
}

// errStream marks a broken stream: the process died or closed it.
var errStream = errors.New("stream broken")

func streamError(err error) error {
	var fe *wire.FrameError
	switch {
	case err == io.EOF:
		return fmt.Errorf("%w: the plugin ended the stream", errStream)
	case wire.IsClosed(err):
		return context.Canceled // the worker ended: w.ctx closed its lane
	case errors.As(err, &fe):
		return fmt.Errorf("%w: %v: a response over max_result_bytes + 1 MiB (the SDK splits its answers to stay under it)", errProtocol, fe)
	case errors.Is(err, wire.ErrMalformed):
		return fmt.Errorf("%w: %v", errProtocol, err)
	}
	s, _ := status.FromError(err)
	switch s.Code() {
	case codes.Canceled:
		return context.Canceled
	case codes.ResourceExhausted:
		return fmt.Errorf("%w: %s: a response over max_result_bytes + 1 MiB (the SDK splits its answers to stay under it)", errProtocol, s.Message())
	}
	return fmt.Errorf("%w: %v", errStream, err)
}
