package wire

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"slices"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	workerpb "github.com/pluginpool/pluginpool/sdk/proto"
)

// A Lane carries the Run stream's batches over a socket pair of their own
// instead of gRPC (docs/PROTOCOL.md, "The lane"): each message is a 4-byte
// little-endian length and one Batch in protobuf wire format. gRPC hands
// every message between goroutines on both ends (the stream's reader and
// the caller, the caller and the HTTP/2 writer): on this project's 2-core
// machine those wake-ups were most of a one-item round trip (W3 in
// bench/README.md). Here Send writes from the caller's goroutine and Recv
// reads on the receiver's.
//
// Send may be called from several goroutines (it is serialized), Recv
// from one at a time. Both are safe to call concurrently with each other
// and with Close.
type Lane struct {
	conn net.Conn
	raw  *rawSocket // conn's descriptor for system calls of our own; nil: conn's methods
	r    *bufio.Reader
	max  int // the longest frame Recv accepts

	// Recv's place in the stream, kept across an Interrupt: got bytes of
	// the header, then off bytes of frame.
	hdr   [4]byte
	got   int
	frame []byte
	off   int
	reuse *workerpb.Batch // see ReuseBatches

	wmu  sync.Mutex
	wbuf []byte // the frame being written: reused
	tbuf []byte // a gathered frame's fields after its data: reused
}

// OpenLane takes over f, one end of a connected stream socket pair, and
// closes it (the Lane keeps a duplicate, close-on-exec, polled by the Go
// runtime). Recv refuses frames longer than maxFrame with a *FrameError.
func OpenLane(f *os.File, maxFrame int) (*Lane, error) {
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("wire: the lane: %w", err)
	}
	return &Lane{conn: c, r: bufio.NewReaderSize(c, laneReadBuffer), max: maxFrame}, nil
}

const (
	// laneReadBuffer holds the small frames (answers of a few items,
	// cancels) that arrive together, so each does not cost a read; a
	// frame longer than it is read straight into its own buffer.
	laneReadBuffer = 64 << 10
	// laneKeep is the largest write buffer a Lane keeps between frames.
	laneKeep = 1 << 20
	// laneGather: a frame's Data at least this long is written from the
	// caller's slice (writev) rather than copied behind the header.
	laneGather = 32 << 10
)

// FrameError is a frame header announcing more than the reader accepts.
type FrameError struct {
	Len, Max int64
}

func (e *FrameError) Error() string {
	return fmt.Sprintf("a frame of %d bytes, over the %d-byte limit", e.Len, e.Max)
}

// Send writes b as one frame.
func (l *Lane) Send(b *workerpb.Batch) error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	buf := append(l.wbuf[:0], 0, 0, 0, 0)
	// Gathered: the frame is buf, b.Data and tail (which may be empty: a
	// batch with no ends or ids).
	gather := false
	var tail []byte
	switch size, ends, ids := batchSize(b); {
	case !plainBatch(b):
		var err error
		if buf, err = (proto.MarshalOptions{}).MarshalAppend(buf, b); err != nil {
			return err
		}
	case len(b.Data) >= laneGather:
		gather = true
		buf = appendHead(buf, b)
		tail = appendTail(l.tbuf[:0], b, ends, ids)
		l.tbuf = tail[:0]
	default:
		buf = appendBatch(slices.Grow(buf, size), b, ends, ids)
	}
	l.wbuf = buf[:0]
	if cap(buf) > laneKeep {
		l.wbuf = nil
	}
	size := len(buf) - 4
	if gather {
		size += len(b.Data) + len(tail)
	}
	if int64(size) > math.MaxUint32 {
		return fmt.Errorf("wire: a batch of %d bytes is too long for one frame", size)
	}
	binary.LittleEndian.PutUint32(buf, uint32(size))
	if l.raw != nil {
		if !gather {
			return l.raw.write(buf, nil, nil)
		}
		return l.raw.write(buf, b.Data, tail)
	}
	if !gather {
		_, err := l.conn.Write(buf)
		return err
	}
	bufs := net.Buffers{buf, b.Data, tail}
	_, err := bufs.WriteTo(l.conn)
	return err
}

// Recv reads the next frame. It returns io.EOF at a clean end of the
// stream (between frames), io.ErrUnexpectedEOF inside one, a *FrameError
// for a frame over the limit, and an error matching
// os.ErrDeadlineExceeded after Interrupt: then the next Recv goes on
// from where this one stopped, inside a frame or not. The batch's Data is
// a buffer of its own, which nothing reuses.
func (l *Lane) Recv() (*workerpb.Batch, error) {
	b := l.reuse
	if b == nil {
		b = new(workerpb.Batch)
	}
	if _, err := l.RecvInto(b, nil); err != nil {
		return nil, err
	}
	return b, nil
}

// RecvInto is Recv decoding into b, which it resets first (keeping the
// capacity of its Ends and Ids), and reading the frame into buf when it
// is large enough; otherwise into a new buffer. It returns the buffer
// b.Data is in, for a reader to pass again once nothing uses that batch
// any more: the next batches then cost no allocation, and no zeroing of
// a fresh frame. After an error matching os.ErrDeadlineExceeded, the next
// call goes on in the buffer the frame was started in, whatever buf it
// is given. On an error b is left as it was.
func (l *Lane) RecvInto(b *workerpb.Batch, buf []byte) ([]byte, error) {
	for l.got < len(l.hdr) {
		n, err := l.r.Read(l.hdr[l.got:])
		l.got += n
		if err != nil {
			if err == io.EOF && l.got > 0 {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	if l.frame == nil {
		n := int64(binary.LittleEndian.Uint32(l.hdr[:]))
		if n > int64(l.max) {
			return nil, &FrameError{Len: n, Max: int64(l.max)}
		}
		if int64(cap(buf)) >= n {
			l.frame = buf[:n]
		} else {
			l.frame = make([]byte, n)
		}
		l.off = 0
	}
	for l.off < len(l.frame) {
		n, err := l.r.Read(l.frame[l.off:])
		l.off += n
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	frame := l.frame
	l.frame, l.got = nil, 0
	*b = workerpb.Batch{Ends: b.Ends[:0], Ids: b.Ids[:0]}
	if err := decodeMessage(frame, b); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return frame, nil
}

// RawSyscalls makes the lane read and write its socket with system calls
// of its own, where the platform allows (Linux), rather than through
// net.Conn's Read and Write: the runtime's poller still parks the
// goroutine until the socket is ready, errors and Interrupt still work
// the same, but a read or write does not enter the scheduler's
// system-call state. Entering it wakes the runtime's monitor thread
// (sysmon) from its deep sleep after a process was idle, and sysmon then
// wakes every 20 µs for a millisecond or more: for a plugin, which is
// idle between batches, ~60 wake-ups of ~1.5 µs a batch, ~5% of a W2
// plugin's CPU (bench/; sysmon 6.6% -> 1.4% of the plugin's samples in
// perf). The socket is non-blocking, so no call blocks and nothing needs
// the processor handed off meanwhile. It must be called before the first
// Send or Recv. It reports whether the lane now does so.
func (l *Lane) RawSyscalls() bool {
	if l.raw = newRawSocket(l.conn); l.raw == nil {
		return false
	}
	l.r.Reset(l.raw)
	return true
}

// ReuseBatches makes Recv return the same Batch every time, valid until
// the next Recv (its Data is still a buffer of its own, which nothing
// reuses): for a reader that keeps nothing of a batch but its Data, one
// allocation fewer a message.
func (l *Lane) ReuseBatches() { l.reuse = new(workerpb.Batch) }

// Interrupt makes a Recv in progress, or the next one, return an error
// matching os.ErrDeadlineExceeded, until Resume: a caller reading answers
// itself can stop without losing its place in the stream.
func (l *Lane) Interrupt() { _ = l.conn.SetReadDeadline(time.Unix(1, 0)) }

// Resume undoes Interrupt.
func (l *Lane) Resume() { _ = l.conn.SetReadDeadline(time.Time{}) }

// Close closes the lane: the peer reads end-of-file, and a Send or Recv
// in progress here returns an error matching net.ErrClosed.
func (l *Lane) Close() error { return l.conn.Close() }

// IsClosed reports whether err is a Send or Recv failing because Close
// was called.
func IsClosed(err error) bool { return errors.Is(err, net.ErrClosed) }
