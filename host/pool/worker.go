package pool

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/experimental"
	"google.golang.org/grpc/status"

	"github.com/pluginpool/pluginpool/internal/python"
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
	cmd    *exec.Cmd
	rpc    workerpb.WorkerClient
	stream workerpb.Worker_RunClient
	ctx    context.Context // the stream's; cancelled when the worker ends
	cancel context.CancelFunc
	stderr *tail
	ledger *ledgerFile // the start ledger, if the plugin keeps it; else nil
	loops  sync.WaitGroup

	// Guarded by Pool.mu.
	state     workerState
	reason    error    // why it ended
	inflight  []*batch // on the wire, oldest first
	cancels   []uint64 // batches to cancel, sent by the sender
	seq       uint64
	headSince time.Time // when inflight[0] reached the head of the plugin's queue
	progress  time.Time // last answer, or the head's start: the timeout clock without a ledger
	tasks     int       // tasks sent
	answered  int       // items answered
	watch     watch     // the watchdog's view of the ledger
}

// errRecycle ends a worker that ran max_tasks_per_worker tasks.
var errRecycle = errors.New("recycled after max_tasks_per_worker tasks")

// killedError ends a worker the watchdog killed because a task ignored its
// timeout.
type killedError struct {
	task uint64 // the task's id, from the start ledger; 0 without one
}

func (e *killedError) Error() string { return "killed: a task ran past task_timeout + kill_grace" }

// launch starts a process for slot and brings it to serving: checksum,
// handshake, Describe, Init, Run stream.
func (p *Pool) launch(slot int) (*worker, error) {
	cfg := &p.cfg
	var ledger *ledgerFile
	fail := func(err error, t *tail) (*worker, error) {
		ledger.close()
		se := &StartError{Plugin: cfg.Name, Path: cfg.Path, Slot: slot, Err: err}
		if t != nil {
			se.Stderr = t.lines()
		}
		return nil, se
	}
	if err := checkExecutable(cfg.Path, cfg.SHA256); err != nil {
		return fail(err, nil)
	}
	path, args, env, err := p.command.resolve(p.killCtx, cfg, p.log)
	if err != nil {
		return fail(err, nil)
	}
	// The process dies with the pool's kill context: a Terminate, or a
	// Start given up on, ends starts in progress too (go-plugin's start
	// takes no context).
	cmd := exec.CommandContext(p.killCtx, path, args...)
	cmd.Env = append(env[:len(env):len(env)], "PLUGINPOOL_LOG_LEVEL="+p.log.GetLevel().String())
	setPdeathsig(cmd)
	// The start ledger (crash.go). Without one, the plugin is told so and
	// every unanswered item it dies with counts as maybe run.
	ledger, err = newLedger()
	if err != nil {
		p.log.Debug("no start ledger", "error", err)
		cmd.Env = append(cmd.Env, ledgerEnv+"=")
	} else {
		cmd.ExtraFiles = []*os.File{ledger.f}
		cmd.Env = append(cmd.Env, ledgerEnv+"="+ledgerFD)
	}

	w := &worker{p: p, slot: slot, cmd: cmd}
	// Called from go-plugin's goroutines, started after the process was:
	// cmd.Process is set by then, w.pid maybe not yet.
	tag := func() string { return fmt.Sprintf("%s[%d] pid %d", cfg.Name, slot, cmd.Process.Pid) }
	w.stderr = newTail(20, newLineWriter(cfg.Stderr, tag, "stderr"))
	w.client = plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  sdk.Handshake,
		Plugins:          plugin.PluginSet{sdk.PluginName: clientPlugin{}},
		Cmd:              cmd,
		SkipHostEnv:      true, // cmd.Env already holds it
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		StartTimeout:     cfg.StartTimeout,
		Logger:           &pluginLogger{Logger: p.log.ResetNamed("go-plugin"), plugin: p.log, w: w},
		Stderr:           w.stderr,
		SyncStdout:       newLineWriter(cfg.Stderr, tag, "stdout"),
		SyncStderr:       newLineWriter(cfg.Stderr, tag, "stderr"),
		GRPCDialOptions: []grpc.DialOption{
			grpc.WithInitialWindowSize(windowSize),
			grpc.WithInitialConnWindowSize(windowSize),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(math.MaxInt32), grpc.MaxCallSendMsgSize(math.MaxInt32),
				grpc.ForceCodecV2(wire.Codec)),
			experimental.WithBufferPool(wire.Pool),
			grpc.WithReadBufferSize(bufferSize),
			grpc.WithWriteBufferSize(bufferSize),
		},
	})
	rpcClient, err := w.client.Client()
	if cmd.Process != nil {
		w.pid = cmd.Process.Pid
	}
	if err != nil {
		w.client.Kill()
		w.drained()
		return fail(handshakeError(err, cmd), w.stderr)
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
		w.stream, err = w.rpc.Run(w.ctx)
		if err != nil {
			w.cancel()
			err = fmt.Errorf("%w: opening the Run stream: %v", ErrHandshake, err)
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
		p.info = Info{Name: desc.Name, Version: desc.Version, Idempotent: desc.Idempotent, SDK: desc.Sdk, StartLedger: w.ledger != nil}
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

// checkExecutable verifies path exists, is executable (a .py script need
// only be readable: an interpreter runs it) and, when want is set, has that
// sha256.
func checkExecutable(path, want string) error {
	st, err := os.Stat(path)
	switch {
	case err != nil && python.IsScript(path):
		return fmt.Errorf("%w: %v (fix the plugin's path)", ErrNotFound, err)
	case err != nil:
		return fmt.Errorf("%w: %v (build the plugin, or fix its path)", ErrNotFound, err)
	case st.IsDir():
		return fmt.Errorf("%w: %s is a directory", ErrNotFound, path)
	case st.Mode()&0o111 == 0 && !python.IsScript(path):
		return fmt.Errorf("%w: %s is not executable (chmod +x it)", ErrNotFound, path)
	}
	if want == "" {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNotFound, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return fmt.Errorf("%w: reading %s: %v", ErrChecksum, path, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return fmt.Errorf("%w: %s has sha256 %s, pool.toml wants %s (rebuilt the plugin? update sha256)", ErrChecksum, path, got, want)
	}
	return nil
}

// handshakeError explains go-plugin's start errors.
func handshakeError(err error, cmd *exec.Cmd) error {
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
		if cmd.ProcessState != nil {
			exit = "it exited (" + cmd.ProcessState.String() + ")"
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

func (l *pluginLogger) Named(string) hclog.Logger {
	return l.plugin.With("slot", l.w.slot, "pid", l.w.cmd.Process.Pid)
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
	if w.cmd.Process != nil {
		_ = w.cmd.Process.Kill()
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
	if ps := w.cmd.ProcessState; ps != nil {
		return ps.String()
	}
	return "stream closed"
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
	for {
		resp, err := w.stream.Recv()
		if err != nil {
			w.end(streamError(err))
			return
		}
		if err := w.p.deliver(w, resp); err != nil {
			w.end(err)
			return
		}
	}
}

// errStream marks a broken stream: the process died or closed it.
var errStream = errors.New("stream broken")

func streamError(err error) error {
	if err == io.EOF {
		return fmt.Errorf("%w: the plugin ended the stream", errStream)
	}
	if s, ok := status.FromError(err); ok && s.Code() == codes.Canceled {
		return context.Canceled
	}
	return fmt.Errorf("%w: %v", errStream, err)
}
