package pool

import (
	"errors"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// groupsSupported: each worker is a process group of its own, ended as a
// whole.
const groupsSupported = true

// procAttr is how every plugin process starts: as the leader of a process
// group of its own, so that ending the worker ends every process it
// started; with the kernel's parent-death signal, so that it dies with
// the host, even a SIGKILLed one (go-plugin leaves its plugins running);
// and born into its cgroup when it has one (clone3's CLONE_INTO_CGROUP:
// no moment outside it), cgroupFD being the cgroup directory's descriptor
// or -1.
func procAttr(cgroupFD int) *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if cgroupFD >= 0 {
		a.UseCgroupFD, a.CgroupFD = true, cgroupFD
	}
	return a
}

// watcherAttr puts the watcher in a process group of its own, without a
// parent-death signal: it must outlive the host.
func watcherAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

// killGroup SIGKILLs every process in process group pgid.
func killGroup(pgid int) { _ = syscall.Kill(-pgid, syscall.SIGKILL) }

// waitExit blocks until child pid has exited, without reaping it: until it
// is reaped, its pid (and so its process group's id) cannot be handed to
// another process, so the group can still be killed safely.
func waitExit(pid int) error {
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// withDataLimit returns the command that runs path with args under an
// RLIMIT_DATA of max bytes: /bin/sh sets the limit, then execs the plugin
// in its place (same pid, same process group). The limit holds from the
// plugin's first instruction, which prlimit after the start cannot
// promise: a Go runtime limited halfway through its start-up dies in ways
// (a segmentation fault) that do not say why.
//
// RLIMIT_DATA, not RLIMIT_AS: it counts what a process writes (heap,
// anonymous mappings, thread stacks) rather than the address space it
// reserves. Measured here with 512 MiB: under RLIMIT_AS a Go program cannot
// even start ("fatal error: failed to reserve page summary memory"), and
// Python with gRPC's threads failed at 400 MiB of data (each thread's
// malloc arena reserves 64 MiB); under RLIMIT_DATA both reach ~500 MiB,
// then Go dies with "fatal error: runtime: out of memory" and Python
// raises MemoryError.
func withDataLimit(path string, args []string, max int64) (string, []string) {
	// ulimit -d takes KiB; dash, bash and busybox sh all have it.
	script := "ulimit -d " + strconv.FormatInt(max>>10, 10) + ` && exec "$0" "$@"`
	return "/bin/sh", append([]string{"sh", "-c", script, path}, args...)
}
