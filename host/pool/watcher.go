package pool

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"

	"github.com/hashicorp/go-hclog"
)

// A watcher is a small /bin/sh process per pool that cleans up after a host
// killed without warning. Pdeathsig ends a plugin when its host dies, but
// not the processes the plugin started, and a SIGKILLed host runs no code:
// something outside it has to end them. The watcher reads the worker
// process groups from a pipe as the host starts and reaps them; when the
// pipe reaches end of file without a "q" (the kernel closes it whatever
// killed the host), it SIGKILLs every group still listed, kills the pool's
// cgroup (which also holds processes that left their group), and removes
// the pool's private directory and cgroups.
//
// A shell, not a re-executed host binary: a Go program embedding the pool
// would otherwise need a hook in its main, and sh is on every Linux system.
// It costs one fork and exec per pool (not per worker), about a millisecond,
// while the workers start.
type watcher struct {
	cmd     *exec.Cmd
	started chan struct{} // closed once cmd has started, or failed to
	err     error         // why it did not start; read after started
	mu      sync.Mutex
	in      io.WriteCloser // nil once stopped or broken
}

// watcherScript is the watcher: $1 is the private directory, $2 the pool's
// cgroup or "". A line "+ PID" adds a process group, "- PID" removes it
// (the host writes it before reaping the group's leader, so a number the
// kernel may hand out again is never killed), "q" exits: the host cleaned
// up itself.
const watcherScript = `trap '' HUP INT QUIT PIPE
d=$1 c=$2 g=' '
while read -r op pid; do
	case $op in
	+) g="$g$pid " ;;
	-) case $g in *" $pid "*) g="${g%% $pid *} ${g#* $pid }" ;; esac ;;
	q) exit 0 ;;
	esac
done
for pid in $g; do kill -s KILL -- "-$pid"; done
if [ -n "$c" ]; then echo 1 >"$c/cgroup.kill"; fi
rm -rf "$d"
if [ -n "$c" ]; then
	for i in 1 2 3 4 5; do rmdir "$c"/*/ 2>/dev/null; rmdir "$c" && break; sleep 1; done
fi
`

// startWatcher starts the watcher of a pool with private directory dir and
// cgroup directory cgroupDir ("" for none), in the background: the pipe
// takes lines at once, and the ~1 ms of starting /bin/sh overlaps the
// workers' starts. A watcher that cannot start is logged, and done
// without.
func startWatcher(dir, cgroupDir string, log hclog.Logger) (*watcher, error) {
	r, in, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("/bin/sh", "-c", watcherScript, "pluginpool-watcher", dir, cgroupDir)
	cmd.Stdin = r
	// Its own process group: a Ctrl-C at the terminal goes to the host's
	// group, and the watcher must stay until the host is gone.
	cmd.SysProcAttr = watcherAttr()
	w := &watcher{cmd: cmd, in: in, started: make(chan struct{})}
	go func() {
		defer close(w.started)
		w.err = cmd.Start()
		r.Close() // the watcher has its own copy, if it started
		if w.err != nil {
			log.Warn("plugin child processes may outlive a host that is SIGKILLed", "reason", fmt.Errorf("starting /bin/sh: %w", w.err))
		}
	}()
	return w, nil
}

func (w *watcher) send(line string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.in == nil {
		return
	}
	if _, err := io.WriteString(w.in, line); err != nil {
		// Killed by someone: nothing to tell any more.
		w.in.Close()
		w.in = nil
	}
}

// add lists process group pgid.
func (w *watcher) add(pgid int) { w.send("+ " + strconv.Itoa(pgid) + "\n") }

// remove unlists process group pgid; call it before reaping its leader.
func (w *watcher) remove(pgid int) { w.send("- " + strconv.Itoa(pgid) + "\n") }

// stop tells the watcher the host cleaned up, so that it exits; wait
// waits for that. Call stop first, clean up, then wait: the watcher exits
// meanwhile.
func (w *watcher) stop() {
	w.send("q\n")
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.in != nil {
		w.in.Close()
		w.in = nil
	}
}

func (w *watcher) wait() {
	<-w.started
	if w.err == nil {
		_ = w.cmd.Wait()
	}
}
