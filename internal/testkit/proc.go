package testkit

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
)

// Alive reports whether pid is a live process: it exists and is not a
// zombie. PID 1 of a container may never reap a killed plugin; exited is
// gone for our purposes.
func Alive(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return runtime.GOOS != "linux" // gone, unless there is no /proc
	}
	// pid (comm) state ...: comm may hold spaces and parentheses.
	rest := b[bytes.LastIndexByte(b, ')')+1:]
	return !bytes.HasPrefix(bytes.TrimSpace(rest), []byte("Z"))
}

// Processes returns the pids of the live processes that match says are
// the test's, given their /proc directory. Linux only: nil elsewhere.
func Processes(match func(procDir string) bool) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || !match(filepath.Join("/proc", e.Name())) {
			continue
		}
		if Alive(pid) {
			out = append(out, pid)
		}
	}
	return out
}

// Running matches the processes running the executable at path.
func Running(path string) func(procDir string) bool {
	return func(dir string) bool {
		exe, err := os.Readlink(filepath.Join(dir, "exe"))
		return err == nil && exe == path
	}
}

// WithEnv matches the processes whose environment holds kv ("KEY=value").
func WithEnv(kv string) func(procDir string) bool {
	want := []byte("\x00" + kv + "\x00")
	return func(dir string) bool {
		b, err := os.ReadFile(filepath.Join(dir, "environ"))
		return err == nil && bytes.Contains(append([]byte{0}, b...), want)
	}
}

// ExitStatus is how a process that Wait returned err for ended, as a shell
// reports it: its exit code, or 128+N after signal N; -1 if it did not
// run.
func ExitStatus(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}
