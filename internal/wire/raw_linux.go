package wire

import (
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"
)

// rawSocket reads and writes a lane's socket with raw system calls on the
// descriptor the runtime's poller watches (see Lane.RawSyscalls). One read
// and one write at a time: the lane reads from one goroutine and writes
// under its lock. The functions handed to the poller are made once, with
// their state in the socket: made per call, they were three allocations
// an Apply.
type rawSocket struct {
	rc syscall.RawConn

	rbuf    []byte // the read in progress
	rn      int
	rerrno  syscall.Errno
	readFn  func(fd uintptr) bool
	wbufs   [3][]byte // the write in progress: what is left of it
	wiov    [3]syscall.Iovec
	werrno  syscall.Errno
	writeFn func(fd uintptr) bool
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
	s := &rawSocket{rc: rc}
	s.readFn, s.writeFn = s.readOnce, s.writeAll
	return s
}

// Read reads as net.Conn's Read does: io.EOF at the end, the poller's
// errors (closed, deadline) as they are.
func (s *rawSocket) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	s.rbuf, s.rn, s.rerrno = p, 0, 0
	err := s.rc.Read(s.readFn)
	n, errno := s.rn, s.rerrno
	s.rbuf = nil
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

// readOnce reads into s.rbuf; it reports false when the socket has
// nothing yet (the poller waits, then calls again).
func (s *rawSocket) readOnce(fd uintptr) bool {
	p := s.rbuf
	for {
		r, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		if e == syscall.EINTR {
			continue
		}
		s.rn, s.rerrno = int(r), e
		return e != syscall.EAGAIN
	}
}

// write writes all of a, b and c, in one writev when the socket takes
// them.
func (s *rawSocket) write(a, b, c []byte) error {
	s.wbufs, s.werrno = [3][]byte{a, b, c}, 0
	err := s.rc.Write(s.writeFn)
	errno := s.werrno
	s.wbufs, s.wiov = [3][]byte{}, [3]syscall.Iovec{} // keep nothing of the caller's
	if err != nil {
		return err
	}
	if errno != 0 {
		return &net.OpError{Op: "write", Net: "unix", Err: os.NewSyscallError("writev", errno)}
	}
	return nil
}

// writeAll writes what is left of s.wbufs; it reports false when the
// socket is full (the poller waits, then calls again).
func (s *rawSocket) writeAll(fd uintptr) bool {
	for {
		k := 0
		for _, buf := range s.wbufs {
			if len(buf) > 0 {
				s.wiov[k] = syscall.Iovec{Base: &buf[0]}
				s.wiov[k].SetLen(len(buf))
				k++
			}
		}
		if k == 0 {
			return true
		}
		r, _, e := syscall.RawSyscall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&s.wiov[0])), uintptr(k))
		switch e {
		case 0:
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		default:
			s.werrno = e
			return true
		}
		n := int(r)
		for i := range s.wbufs {
			m := min(n, len(s.wbufs[i]))
			s.wbufs[i], n = s.wbufs[i][m:], n-m
		}
	}
}
