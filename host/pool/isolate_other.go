//go:build !linux

package pool

import (
	"errors"
	"syscall"
)

// groupsSupported: process groups, the parent-death signal, cgroups and
// memory limits are Linux-only here; elsewhere a worker is its process
// alone and the SDK's parent watch ends plugins whose host died.
const groupsSupported = false

func procAttr(int) *syscall.SysProcAttr { return nil }

func watcherAttr() *syscall.SysProcAttr { return nil }

func killGroup(int) {}

// waitExit cannot wait without reaping here; the caller's Wait reaps.
func waitExit(int) error { return errNoWaitExit }

var errNoWaitExit = errors.New("waiting without reaping is Linux-only")

// withDataLimit is never called: Config rejects MaxMemory here.
func withDataLimit(path string, args []string, _ int64) (string, []string) {
	return path, append([]string{path}, args...)
}
