package wire

import (
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"
)

// rawSocket reads and writes a lane's socket with raw system calls on the
// descriptor the runtime's poller watches (see Lane.RawSyscalls).
type rawSocket struct {
	rc syscall.RawConn
}

// newRawSocket returns c's raw socket, or nil if c has none.
func newRawSocket(c net.Conn) *rawSocket {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return &rawSocket{rc: rc}
}

// Read reads as net.Conn's Read does: io.EOF at the end, the poller's
// errors (closed, deadline) as they are.
func (s *rawSocket) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var (
		n     int
		errno syscall.Errno
	)
	err := s.rc.Read(func(fd uintptr) bool {
		for {
			r, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
			if e == syscall.EINTR {
				continue
			}
			n, errno = int(r), e
			return e != syscall.EAGAIN // not ready: the poller waits, then calls again
		}
	})
	switch {
	case err != nil:
		return 0, err
	case errno != 0:
		return 0, &net.OpError{Op: "read", Net: "unix", Err: os.NewSyscallError("read", errno)}
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// write writes all of a, b and c, in one writev when the socket takes
// them.
func (s *rawSocket) write(a, b, c []byte) error {
	bufs := [3][]byte{a, b, c}
	var (
		iov   [3]syscall.Iovec
		errno syscall.Errno
	)
	err := s.rc.Write(func(fd uintptr) bool {
		for {
			k := 0
			for _, buf := range bufs {
				if len(buf) > 0 {
					iov[k] = syscall.Iovec{Base: &buf[0]}
					iov[k].SetLen(len(buf))
					k++
				}
			}
			if k == 0 {
				return true
			}
			r, _, e := syscall.RawSyscall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&iov[0])), uintptr(k))
			switch e {
			case 0:
			case syscall.EINTR:
				continue
			case syscall.EAGAIN:
				return false // the socket is full: the poller waits, then calls again
			default:
				errno = e
				return true
			}
			n := int(r)
			for i := range bufs {
				m := min(n, len(bufs[i]))
				bufs[i], n = bufs[i][m:], n-m
			}
		}
	})
	if err != nil {
		return err
	}
	if errno != 0 {
		return &net.OpError{Op: "write", Net: "unix", Err: os.NewSyscallError("writev", errno)}
	}
	return nil
}
