package wire

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"syscall"
	"testing"

	"google.golang.org/protobuf/proto"

	workerpb "github.com/pluginpool/pluginpool/sdk/proto"
)

// lanes returns the two ends of a fresh socket pair as Lanes; raw: with
// RawSyscalls.
func lanes(t *testing.T, max int, raw ...bool) (a, b *Lane) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	a, err = OpenLane(os.NewFile(uintptr(fds[0]), "a"), max)
	if err != nil {
		t.Fatal(err)
	}
	b, err = OpenLane(os.NewFile(uintptr(fds[1]), "b"), max)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	if len(raw) > 0 && raw[0] {
		if !a.RawSyscalls() || !b.RawSyscalls() {
			if runtime.GOOS == "linux" {
				t.Fatal("RawSyscalls = false on Linux")
			}
			t.Skip("no raw system calls on " + runtime.GOOS)
		}
	}
	return a, b
}

func TestLaneRoundTrip(t *testing.T) {
	for _, raw := range []bool{false, true} {
		for _, reuse := range []bool{false, true} {
			t.Run(fmt.Sprintf("raw=%v/reuse=%v", raw, reuse), func(t *testing.T) { laneRoundTrip(t, raw, reuse) })
		}
	}
}

// laneRoundTrip sends frames of every kind; with reuse, each must be read
// whole into the one Batch, nothing left of the one before.
func laneRoundTrip(t *testing.T, raw, reuse bool) {
	a, b := lanes(t, 4<<20, raw)
	if reuse {
		b.ReuseBatches()
	}
	big := bytes.Repeat([]byte("7,"), 100_000) // gathered: written from the caller's slice
	msgs := []*workerpb.Batch{
		{Seq: 1, Data: []byte("123"), Ends: []uint32{1, 3}, BaseId: 9, Attempt: 1},
		{Seq: 5, Data: big}, // gathered, nothing after its data, the lane's first such
		{Seq: 2, Data: big, Ends: []uint32{100_000, 200_000}, Ids: []uint64{5, 1 << 40}, Attempt: 2},
		{Seq: 2, Cancel: true},
		{Seq: 3, First: 4, Data: []byte("x"), Ends: []uint32{1},
			Errors: []*workerpb.ItemError{{Index: 1, Kind: workerpb.ErrorKind_ERROR_KIND_TASK, Message: []byte("\xffbad")}},
			Output: []*workerpb.ItemOutput{{Index: 0, Lines: [][]byte{[]byte("hi")}}}},
		{}, // an empty frame is a Batch too
		{Seq: 4, Data: []byte("1"), Ends: []uint32{1}},
	}
	go func() {
		for _, m := range msgs {
			if err := a.Send(m); err != nil {
				t.Error(err)
				return
			}
		}
		a.Close()
	}()
	for i, want := range msgs {
		got, err := b.Recv()
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if !proto.Equal(got, want) {
			t.Fatalf("frame %d: got %v, want %v", i, got, want)
		}
	}
	if _, err := b.Recv(); err != io.EOF {
		t.Fatalf("after the last frame: %v, want io.EOF", err)
	}
}

func TestLaneBounds(t *testing.T) {
	a, b := lanes(t, 100)
	if err := a.Send(&workerpb.Batch{Seq: 1, Data: make([]byte, 200)}); err != nil {
		t.Fatal(err)
	}
	_, err := b.Recv()
	var fe *FrameError
	if !errors.As(err, &fe) || fe.Max != 100 || fe.Len < 200 {
		t.Fatalf("a 200-byte frame on a lane of 100: %v, want a *FrameError", err)
	}

	// A frame cut short is not a clean end.
	a, b = lanes(t, 100)
	var hdr [4]byte
	binary.LittleEndian.PutUint32(hdr[:], 10)
	a.conn.Write(append(hdr[:], 1, 2))
	a.Close()
	if _, err := b.Recv(); err != io.ErrUnexpectedEOF {
		t.Fatalf("a frame cut short: %v, want io.ErrUnexpectedEOF", err)
	}
}

// Interrupt stops a Recv inside a frame; after Resume the next Recv
// returns that frame whole.
func TestLaneInterrupt(t *testing.T) {
	for _, raw := range []bool{false, true} {
		t.Run(fmt.Sprintf("raw=%v", raw), func(t *testing.T) { laneInterrupt(t, raw) })
	}
}

func laneInterrupt(t *testing.T, raw bool) {
	a, b := lanes(t, 1<<20, raw)
	var frame bytes.Buffer
	want := &workerpb.Batch{Seq: 5, Data: []byte("hello"), Ends: []uint32{5}}
	enc, _ := proto.Marshal(want)
	binary.Write(&frame, binary.LittleEndian, uint32(len(enc)))
	frame.Write(enc)
	all := frame.Bytes()
	for _, cut := range []int{0, 2, 4, 7} {
		a.conn.Write(all[:cut])
		b.Interrupt()
		if _, err := b.Recv(); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("cut at %d: Recv after Interrupt: %v", cut, err)
		}
		b.Resume()
		a.conn.Write(all[cut:])
		got, err := b.Recv()
		if err != nil || !proto.Equal(got, want) {
			t.Fatalf("cut at %d: after Resume: %v, %v", cut, got, err)
		}
	}
}

// Close ends a Recv and a Send in progress with an error IsClosed
// recognizes, and a Send to a peer gone fails; with RawSyscalls as
// without.
func TestLaneClose(t *testing.T) {
	for _, raw := range []bool{false, true} {
		t.Run(fmt.Sprintf("raw=%v", raw), func(t *testing.T) {
			a, b := lanes(t, 1<<20, raw)
			recvErr := make(chan error, 1)
			go func() {
				_, err := b.Recv()
				recvErr <- err
			}()
			// A frame larger than the socket's buffer: Send waits for a
			// reader that never comes, until Close.
			sendErr := make(chan error, 1)
			go func() { sendErr <- a.Send(&workerpb.Batch{Seq: 1, Data: make([]byte, 8<<20)}) }()
			b.Close()
			if err := <-recvErr; !IsClosed(err) {
				t.Errorf("Recv during Close: %v, want IsClosed", err)
			}
			if err := <-sendErr; err == nil || IsClosed(err) {
				t.Errorf("Send to a closed peer: %v, want an error (not IsClosed: this end is open)", err)
			}
			if err := a.Send(&workerpb.Batch{Seq: 2}); err == nil {
				t.Error("Send to a closed peer: no error")
			}
			a.Close()
			if err := a.Send(&workerpb.Batch{Seq: 3}); !IsClosed(err) {
				t.Errorf("Send after Close: %v, want IsClosed", err)
			}
		})
	}
}

// Whatever a peer writes, Recv returns batches or an error, never panics,
// and allocates no frame over its limit.
func FuzzLaneRecv(f *testing.F) {
	frame := func(b *workerpb.Batch) []byte {
		enc, _ := proto.Marshal(b)
		return append(binary.LittleEndian.AppendUint32(nil, uint32(len(enc))), enc...)
	}
	f.Add(frame(&workerpb.Batch{Seq: 1, Data: []byte("12"), Ends: []uint32{1, 2}}))
	f.Add(append(frame(&workerpb.Batch{Seq: 1, Cancel: true}), frame(&workerpb.Batch{Seq: 2})...))
	f.Add([]byte{255, 255, 255, 255})
	f.Add([]byte{3, 0, 0, 0, 0x0a, 0x01})
	f.Add(frame(&workerpb.Batch{Errors: []*workerpb.ItemError{{Index: 3}}}))
	f.Fuzz(func(t *testing.T, in []byte) {
		l := &Lane{r: bufio.NewReaderSize(bytes.NewReader(in), 16), max: 1 << 16}
		for range 1000 {
			b, err := l.Recv()
			if err != nil {
				var fe *FrameError
				if err != io.EOF && err != io.ErrUnexpectedEOF && !errors.Is(err, ErrMalformed) && !errors.As(err, &fe) {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if len(b.Data) > 1<<16 {
				t.Fatalf("a batch of %d bytes through a lane of 64 KiB", len(b.Data))
			}
		}
	})
}
