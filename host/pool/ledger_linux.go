package pool

import (
	"os"

	"golang.org/x/sys/unix"
)

// memFile returns an anonymous file in memory (memfd_create), closed on
// exec unless passed on (exec.Cmd.ExtraFiles).
func memFile(name string) (*os.File, error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), name), nil
}
