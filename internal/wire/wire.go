// Package wire holds what both ends of the Run stream share: the batches'
// hand-written encoding (batch.go); the lane, which carries them as frames
// on a socket pair of their own (lane.go); and, for the gRPC transport, a
// buffer pool that does not zero what it hands out and a proto codec that
// uses it.
//
// gRPC's default pool clears every buffer it returns, by its capacity: a
// ~110 KiB batch takes a 1 MiB buffer and clears all of it, which measured
// ~12% of all CPU samples of a 1M-item map. Buffers here are always
// written in full before they are read, so clearing them buys nothing.
package wire

import (
	"fmt"
	"math/bits"
	"sync"

	workerpb "github.com/pluginpool/pluginpool/sdk/proto"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
)

// Pool is a BufferPool with one tier per power of two, 256 B to 1 GiB.
var Pool mem.BufferPool = &dirtyPool{}

const (
	minShift = 8
	maxShift = 30
)

type dirtyPool struct {
	tiers [maxShift + 1]sync.Pool
}

func (p *dirtyPool) Get(n int) *[]byte {
	k := max(bits.Len(uint(max(n, 1)-1)), minShift)
	if k > maxShift {
		b := make([]byte, n)
		return &b
	}
	if v, ok := p.tiers[k].Get().(*[]byte); ok {
		*v = (*v)[:n]
		return v
	}
	b := make([]byte, n, 1<<k)
	return &b
}

func (p *dirtyPool) Put(b *[]byte) {
	c := cap(*b)
	k := bits.Len(uint(c)) - 1
	if k < minShift || k > maxShift || c != 1<<k {
		return // not one of ours
	}
	p.tiers[k].Put(b)
}

// Codec is gRPC's proto codec with its buffers from Pool. It is passed per
// connection (grpc.ForceCodecV2, grpc.ForceServerCodecV2), never
// registered globally, so a program embedding the host keeps its own gRPC
// defaults.
var Codec encoding.CodecV2 = codec{}

type codec struct{}

func (codec) Name() string { return "proto" }

func (codec) Marshal(v any) (mem.BufferSlice, error) {
	if b, ok := v.(*workerpb.Batch); ok && plainBatch(b) {
		size, ends, ids := batchSize(b)
		buf := Pool.Get(size)
		*buf = appendBatch((*buf)[:0], b, ends, ids)
		return mem.BufferSlice{mem.NewBuffer(buf, Pool)}, nil
	}
	m, ok := v.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("wire: cannot marshal %T, want a proto.Message", v)
	}
	size := proto.Size(m)
	buf := Pool.Get(size)
	// UseCachedSize reuses the Size just computed.
	out, err := proto.MarshalOptions{UseCachedSize: true}.MarshalAppend((*buf)[:0], m)
	if err != nil {
		Pool.Put(buf)
		return nil, err
	}
	*buf = out
	return mem.BufferSlice{mem.NewBuffer(buf, Pool)}, nil
}

func (codec) Unmarshal(data mem.BufferSlice, v any) error {
	if b, ok := v.(*workerpb.Batch); ok {
		return unmarshalBatch(data, b)
	}
	m, ok := v.(proto.Message)
	if !ok {
		return fmt.Errorf("wire: cannot unmarshal into %T, want a proto.Message", v)
	}
	buf := data.MaterializeToBuffer(Pool)
	defer buf.Free()
	// proto.Unmarshal copies bytes fields, so the buffer can go back.
	return proto.Unmarshal(buf.ReadOnlyData(), m)
}
