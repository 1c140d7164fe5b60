package pool

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin/runner"
)

// A proc is one worker process. It is go-plugin's runner.Runner
// (ClientConfig.RunnerFunc) so that the pool, not go-plugin, starts and
// ends the process: go-plugin's own runner hands the plugin the host's
// stdin and ends only the process it started. With a RunnerFunc,
// go-plugin also gives each plugin a private socket directory (os.MkdirTemp
// in UnixSocketConfig.TempDir, 0700, passed as PLUGIN_UNIX_SOCKET_DIR, and
// removed by Client.Kill); see go-plugin v1.8.0 client.go, Start.
//
// Every end of the process ends its tree: when the plugin exits or is
// killed, its process group and its cgroup are SIGKILLed before it is
// reaped.
type proc struct {
	// template is the command launch built: path, args, environment, extra
	// files. Start runs a copy of it, with go-plugin's environment added.
	template *exec.Cmd
	ctx      context.Context // killing the pool kills the process
	sb       *sandbox
	// socketDir is the directory go-plugin made for this plugin's socket
	// (PLUGIN_UNIX_SOCKET_DIR).
	socketDir string
	// maxMemory is Config.MaxMemory, enforced as the sandbox says.
	maxMemory int64
	log       hclog.Logger
	// output receives what the plugin writes to its stdout after the
	// handshake line (see splitStdout).
	output *lineWriter

	// Set by Start.
	cmd    *exec.Cmd
	pid    int
	cg     *workerCgroup // nil without one
	stdout *pipeEnd
	stderr *pipeEnd
	// handshake is what go-plugin reads as the plugin's stdout: the
	// handshake line only.
	handshake io.ReadCloser
	copying   sync.WaitGroup // splitStdout's goroutine
	exited    chan struct{}  // closed once the process has exited and its tree was killed

	mu     sync.Mutex
	reaped bool // set just before the reap: from then on the pid may be reused
	waited bool // the reap is done: cmd.ProcessState is set
	oom    bool // the cgroup's OOM killer struck
	err    error
}

var _ runner.Runner = (*proc)(nil)

// pipeGrace is how long, after the plugin and its tree were killed, its
// stdout and stderr may stay open. Only a process that escaped the tree
// (left its process group, where there is no cgroup) can hold them longer;
// go-plugin would wait for it forever before reaping.
const pipeGrace = 2 * time.Second

// Start starts the process. stdin is /dev/null whatever the host's is:
// go-plugin sets the host's, and a plugin reading it would steal the
// CLI's input.
func (p *proc) Start(ctx context.Context) error {
	if p.sb.cgroup != nil {
		limit := int64(0)
		if p.sb.memory == memoryCgroup {
			limit = p.maxMemory
		}
		cg, err := p.sb.cgroup.worker(p.sb.workers.Add(1), limit)
		if err != nil {
			if limit > 0 {
				return err // max_memory would not hold
			}
			p.log.Debug("worker runs without a cgroup", "error", err)
		} else {
			p.cg = cg
		}
	}
	var cmd *exec.Cmd
	for attempt := 1; ; attempt++ {
		cmd = p.command()
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			return p.startFailed(err)
		}
		stderr, err := cmd.StderrPipe()
		if err != nil {
			return p.startFailed(err)
		}
		err = cmd.Start()
		// ETXTBSY: the verified copy was written by this process, and a
		// fork elsewhere in it (another pool starting) may hold the
		// written descriptor until its exec. It lasts microseconds.
		if errors.Is(err, syscall.ETXTBSY) && attempt < 20 && ctx.Err() == nil {
			time.Sleep(time.Duration(attempt) * time.Millisecond)
			continue
		}
		if err != nil {
			return p.startFailed(err)
		}
		p.stdout, p.stderr = newPipeEnd(stdout), newPipeEnd(stderr)
		break
	}
	p.cg.started()
	p.mu.Lock()
	p.cmd, p.pid = cmd, cmd.Process.Pid
	p.mu.Unlock()
	p.exited = make(chan struct{})
	if p.sb.watcher != nil {
		p.sb.watcher.add(p.pid)
	}
	p.handshake = p.splitStdout()
	go p.watch()
	return nil
}

// maxHandshake bounds the handshake line, as go-plugin's scanner does.
const maxHandshake = 64 << 10

// splitStdout gives go-plugin the plugin's stdout up to its first newline,
// the handshake line, then end of file; the rest goes to p.output, line
// by line. go-plugin would read the rest itself and drop it, and a line of
// 64 KiB or more stops its scanner for good: the plugin's next writes to
// stdout then block forever (a Go plugin's fmt.Print goes over gRPC, but a
// Python print or a C library's write goes to the real stdout).
func (p *proc) splitStdout() io.ReadCloser {
	pr, pw := io.Pipe()
	p.copying.Add(1)
	go func() {
		defer p.copying.Done()
		br := bufio.NewReaderSize(p.stdout, maxHandshake)
		line, err := br.ReadSlice('\n')
		_, _ = pw.Write(line)
		pw.Close()
		if err == nil || errors.Is(err, bufio.ErrBufferFull) {
			_, _ = io.Copy(p.output, br)
		}
		p.output.flush()
	}()
	return pr
}

func (p *proc) startFailed(err error) error {
	if p.cg != nil {
		_ = p.cg.remove()
	}
	return err
}

// command is a fresh copy of the template to start.
func (p *proc) command() *exec.Cmd {
	t := p.template
	cmd := exec.CommandContext(p.ctx, t.Path)
	cmd.Path, cmd.Args, cmd.Err = t.Path, t.Args, t.Err
	if p.sb.memory == memoryRlimit && t.Err == nil {
		cmd.Path, cmd.Args = withDataLimit(t.Path, t.Args[1:], p.maxMemory)
	}
	cmd.Env, cmd.Dir, cmd.ExtraFiles = t.Env, t.Dir, t.ExtraFiles
	cmd.SysProcAttr = procAttr(p.cg.fdNum())
	cmd.Cancel = func() error {
		// Maybe before Start has recorded cmd: kill what exec started.
		p.mu.Lock()
		defer p.mu.Unlock()
		if !p.reaped {
			p.killLocked(cmd)
		}
		return nil
	}
	return cmd
}

// watch waits for the process to exit, kills what is left of its tree,
// and gives go-plugin pipeGrace to read the last of its output.
func (p *proc) watch() {
	defer close(p.exited)
	if err := waitExit(p.pid); err != nil {
		return // no way to wait without reaping: Wait reaps
	}
	p.kill()
	t := time.NewTimer(pipeGrace)
	defer t.Stop()
	for _, e := range []*pipeEnd{p.stdout, p.stderr} {
		select {
		case <-e.eof:
		case <-t.C:
			p.log.Warn("a process the plugin started keeps its output open; closing it", "pid", p.pid)
			p.stdout.Close()
			p.stderr.Close()
			return
		}
	}
}

// Wait waits for the process to exit, then reaps it. go-plugin calls it
// once, after reading its stdout and stderr to the end.
func (p *proc) Wait(context.Context) error {
	<-p.exited
	p.mu.Lock()
	if p.reaped {
		p.mu.Unlock()
		return p.err
	}
	p.reaped = true
	if p.cg != nil {
		p.oom = p.cg.oomKilled()
	}
	p.mu.Unlock()
	if p.sb.watcher != nil {
		p.sb.watcher.remove(p.pid)
	}
	p.copying.Wait()
	err := p.cmd.Wait()
	if p.cg != nil {
		if rerr := p.cg.remove(); rerr != nil {
			p.log.Debug("cannot remove a worker's cgroup yet; the pool retries when it stops", "error", rerr)
		}
	}
	p.mu.Lock()
	p.err, p.waited = err, true
	p.mu.Unlock()
	return err
}

// Kill SIGKILLs the process and its tree now. It does not wait.
func (p *proc) Kill(context.Context) error {
	p.kill()
	return nil
}

func (p *proc) kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil && !p.reaped {
		p.killLocked(p.cmd)
	}
}

// killLocked kills cmd's process group and cgroup; p.mu is held, and
// cmd's process has not been reaped.
func (p *proc) killLocked(cmd *exec.Cmd) {
	if groupsSupported {
		killGroup(cmd.Process.Pid)
	} else {
		_ = cmd.Process.Kill()
	}
	if p.cg != nil {
		p.cg.kill()
	}
}

// state is how the process ended, once Wait has reaped it.
func (p *proc) state() *os.ProcessState {
	if p == nil || p.cmd == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.waited {
		return nil
	}
	return p.cmd.ProcessState
}

// oomKilled reports whether the cgroup's OOM killer struck the worker.
func (p *proc) oomKilled() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.oom
}

func (p *proc) Stdout() io.ReadCloser           { return p.handshake }
func (p *proc) Stderr() io.ReadCloser           { return newLogLines(p.stderr) } // see logLines
func (p *proc) Name() string                    { return p.template.Path }
func (p *proc) ID() string                      { return strconv.Itoa(p.pid) }
func (p *proc) Diagnose(context.Context) string { return "" }

// PluginToHost checks the address the plugin announced in its handshake:
// a unix socket in its private directory, never a TCP port, which every
// local user could connect to (go-plugin's Python example listens on
// 127.0.0.1). Windows, which go-plugin serves over TCP, is not checked.
func (p *proc) PluginToHost(network, addr string) (string, string, error) {
	if runtime.GOOS != "windows" && (network != "unix" || filepath.Dir(addr) != p.socketDir) {
		return "", "", fmt.Errorf("it listens on %s %s: a plugin must listen on a unix socket in the directory PLUGIN_UNIX_SOCKET_DIR names (%s), which only the host's user can enter", network, addr, p.socketDir)
	}
	return network, addr, nil
}

// HostToPlugin: host and plugin share one filesystem.
func (p *proc) HostToPlugin(network, addr string) (string, string, error) { return network, addr, nil }

// A pipeEnd is the host's end of a plugin's stdout or stderr, noting when
// it reached end of file.
type pipeEnd struct {
	io.ReadCloser
	eof  chan struct{}
	once sync.Once
}

func newPipeEnd(r io.ReadCloser) *pipeEnd { return &pipeEnd{ReadCloser: r, eof: make(chan struct{})} }

func (e *pipeEnd) Read(b []byte) (int, error) {
	n, err := e.ReadCloser.Read(b)
	if err != nil {
		e.done()
	}
	return n, err
}

// done marks the pipe read to its end.
func (e *pipeEnd) done() { e.once.Do(func() { close(e.eof) }) }
