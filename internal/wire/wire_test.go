package wire

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/proto"

	workerpb "github.com/pluginpool/pluginpool/sdk/proto"
)

func TestPoolTiers(t *testing.T) {
	for _, n := range []int{0, 1, 255, 256, 257, 4096, 100_000, 1 << 20} {
		b := Pool.Get(n)
		if len(*b) != n {
			t.Fatalf("Get(%d): len %d", n, len(*b))
		}
		if c := cap(*b); c < n || c&(c-1) != 0 {
			t.Fatalf("Get(%d): cap %d is not a power of two >= n", n, c)
		}
		Pool.Put(b)
	}
	odd := make([]byte, 300)
	Pool.Put(&odd) // not a power of two: dropped, never handed out again
	if b := Pool.Get(300); cap(*b) != 512 {
		t.Fatalf("Get(300) after Put of a 300-byte buffer: cap %d, want 512", cap(*b))
	}
}

func TestCodecRoundTrip(t *testing.T) {
	in := &workerpb.Batch{Seq: 7, Data: bytes.Repeat([]byte("x"), 200_000), Ends: []uint32{100_000, 200_000}}
	data, err := Codec.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out workerpb.Batch
	if err := Codec.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	data.Free()
	// The decoded message must not alias a buffer that went back to the pool.
	b := Pool.Get(300_000)
	copy(*b, bytes.Repeat([]byte("y"), 300_000))
	if !proto.Equal(in, &out) {
		t.Fatal("round trip changed the message")
	}
	Pool.Put(b)
	if _, err := Codec.Marshal("not a message"); err == nil {
		t.Fatal("Marshal accepted a string")
	}
}
