//go:build unix

package sdk

import (
	"os"
	"time"
)

// detachStdin points fd 0 at /dev/null. pluginpool's host starts plugins
// with stdin on /dev/null already; go-plugin's own runner hands them the
// host's stdin, where a CLI reads its input: a plugin that read it would
// steal items.
func detachStdin() {
	f, err := os.Open(os.DevNull)
	if err != nil {
		return
	}
	defer f.Close()
	_ = dup2(int(f.Fd()), 0)
}

// watchParent exits when the host goes away. On Linux the host also sets
// Pdeathsig, which is immediate; this covers other systems and hosts that
// did not.
func watchParent() {
	ppid := os.Getppid()
	for range time.Tick(500 * time.Millisecond) {
		if os.Getppid() != ppid {
			os.Exit(3)
		}
	}
}

// unbufferStderr makes writes to os.Stderr, go-plugin's forwarding pipe,
// go to real instead: it puts real's file in the pipe's descriptor. No Go
// variable changes, so code that holds os.Stderr is covered too.
func unbufferStderr(real *os.File) {
	_ = dup2(int(real.Fd()), int(os.Stderr.Fd()))
}
