//go:build unix

package pool

import (
	"os"
	"syscall"
)

// lanePair makes the socket pair of a worker's lane (docs/PROTOCOL.md,
// "The lane"): one end for the host, one for the plugin to inherit. Both
// are close-on-exec here, so other processes the host starts meanwhile do
// not inherit them; the plugin gets its end through ExtraFiles.
func lanePair() (host, plugin *os.File, err error) {
	syscall.ForkLock.RLock()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err == nil {
		syscall.CloseOnExec(fds[0])
		syscall.CloseOnExec(fds[1])
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return nil, nil, os.NewSyscallError("socketpair", err)
	}
	return os.NewFile(uintptr(fds[0]), "lane"), os.NewFile(uintptr(fds[1]), "lane"), nil
}
