//go:build !linux

package pool

import "os/exec"

// setPdeathsig is Linux-only; elsewhere the SDK's parent watch ends
// orphaned plugins.
func setPdeathsig(*exec.Cmd) {}
