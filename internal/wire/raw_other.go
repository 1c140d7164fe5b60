//go:build !linux

package wire

import "net"

// rawSocket: only on Linux; elsewhere the lane uses net.Conn's methods.
type rawSocket struct{}

func newRawSocket(net.Conn) *rawSocket { return nil }

func (*rawSocket) Read([]byte) (int, error) { panic("unreachable") }

func (*rawSocket) write(a, b, c []byte) error { panic("unreachable") }
