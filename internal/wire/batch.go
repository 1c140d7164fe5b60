package wire

import (
	"encoding/binary"
	"errors"
	"math/bits"
	"slices"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	workerpb "github.com/pluginpool/pluginpool/sdk/proto"
)

// Batches, the Run stream's messages, are encoded and decoded here by
// hand, in the wire format worker.proto defines (a peer built from the
// .proto, a Python SDK, reads and writes the same bytes). The generated
// code went through protobuf's table-driven runtime for every item
// boundary: in a 1M-item map, ~100 instructions per item on each side to
// decode and encode the packed ends, where a plain loop takes ~10. A batch
// with errors or printed lines, and any field this code does not know,
// takes the generated code's path: they are rare and not per item.

// Batch field numbers (worker.proto).
const (
	fieldSeq     = 1
	fieldFirst   = 2
	fieldData    = 3
	fieldEnds    = 4
	fieldIds     = 5
	fieldBaseID  = 6
	fieldAttempt = 7
	fieldCancel  = 10
)

// plainBatch reports whether b has only the fields marshalBatch writes.
func plainBatch(b *workerpb.Batch) bool {
	return len(b.Errors) == 0 && len(b.Output) == 0 && len(b.ProtoReflect().GetUnknown()) == 0
}

// batchSize is the encoded size of a plain batch, and of its packed ends
// and ids.
func batchSize(b *workerpb.Batch) (size, ends, ids int) {
	ends = endsSize(b.Ends)
	for _, id := range b.Ids {
		ids += varintSize(id)
	}
	size = varintField(b.Seq) + varintField(uint64(b.First)) + bytesField(len(b.Data)) +
		bytesField(ends) + bytesField(ids) + varintField(b.BaseId) + varintField(uint64(b.Attempt))
	if b.Cancel {
		size += 2
	}
	return size, ends, ids
}

// endsSize is the size of ends as packed varints. Item boundaries only
// grow within a batch (the SDK's checkRequest refuses others, and answers
// are written in order): then the values of each varint length are a run,
// found by binary search, and only the order is checked per value, a
// compare where varintSize was a bit scan, a multiply and a shift.
func endsSize(ends []uint32) int {
	prev := uint32(0)
	for _, e := range ends {
		if e < prev {
			size := 0
			for _, e := range ends {
				size += varintSize(uint64(e))
			}
			return size
		}
		prev = e
	}
	size := len(ends)
	for _, min := range [...]uint32{1 << 7, 1 << 14, 1 << 21, 1 << 28} {
		i, _ := slices.BinarySearch(ends, min) // the first at or past min
		size += len(ends) - i
	}
	return size
}

// varintField and bytesField are the sizes of a field (tag included) with
// that value, 0 for proto3's omitted zero values. Every tag here is one byte.
func varintField(v uint64) int {
	if v == 0 {
		return 0
	}
	return 1 + varintSize(v)
}

func bytesField(n int) int {
	if n == 0 {
		return 0
	}
	return 1 + varintSize(uint64(n)) + n
}

func varintSize(v uint64) int { return int(9*uint32(bits.Len64(v))+64) / 64 }

// appendBatch appends the encoding of a plain batch, in field order, as
// proto.Marshal writes it.
func appendBatch(out []byte, b *workerpb.Batch, ends, ids int) []byte {
	out = appendHead(out, b)
	out = append(out, b.Data...)
	return appendTail(out, b, ends, ids)
}

// appendHead appends a plain batch's fields before its data's bytes: the
// sequence number, the first item, the data's tag and length.
func appendHead(out []byte, b *workerpb.Batch) []byte {
	out = appendVarintField(out, fieldSeq, b.Seq)
	out = appendVarintField(out, fieldFirst, uint64(b.First))
	if len(b.Data) > 0 {
		out = protowire.AppendTag(out, fieldData, protowire.BytesType)
		out = protowire.AppendVarint(out, uint64(len(b.Data)))
	}
	return out
}

// appendTail appends a plain batch's fields after its data.
func appendTail(out []byte, b *workerpb.Batch, ends, ids int) []byte {
	if ends > 0 {
		out = protowire.AppendTag(out, fieldEnds, protowire.BytesType)
		out = protowire.AppendVarint(out, uint64(ends))
		out = appendVarints(out, b.Ends, ends)
	}
	if ids > 0 {
		out = protowire.AppendTag(out, fieldIds, protowire.BytesType)
		out = protowire.AppendVarint(out, uint64(ids))
		out = appendVarints(out, b.Ids, ids)
	}
	out = appendVarintField(out, fieldBaseID, b.BaseId)
	out = appendVarintField(out, fieldAttempt, uint64(b.Attempt))
	if b.Cancel {
		out = append(out, fieldCancel<<3|byte(protowire.VarintType), 1)
	}
	return out
}

func appendVarintField(out []byte, field protowire.Number, v uint64) []byte {
	if v == 0 {
		return out
	}
	return protowire.AppendVarint(protowire.AppendTag(out, field, protowire.VarintType), v)
}

// appendVarints appends vs as varints, size bytes in all. Two values of
// three bytes each (the ends of a batch past 16 KiB of items) are written
// with one 8-byte store.
func appendVarints[T uint32 | uint64](out []byte, vs []T, size int) []byte {
	out = slices.Grow(out, size+2) // room for the store's last 2 bytes
	p := len(out)
	buf := out[:cap(out)]
	k := 0
	for ; k+1 < len(vs) && p+8 <= len(buf); k++ {
		v, w := vs[k], vs[k+1]
		if v-1<<14 < 1<<21-1<<14 && w-1<<14 < 1<<21-1<<14 {
			x := uint64(v&0x7f|0x80|(v>>7&0x7f|0x80)<<8|v>>14<<16) | uint64(w&0x7f|0x80|(w>>7&0x7f|0x80)<<8|w>>14<<16)<<24
			binary.LittleEndian.PutUint64(buf[p:], x)
			p += 6
			k++
			continue
		}
		p = putVarint(buf, p, v)
	}
	for _, v := range vs[k:] {
		p = putVarint(buf, p, v)
	}
	return out[:p]
}

// putVarint writes v as a varint at buf[p:] and returns where it ends.
func putVarint[T uint32 | uint64](buf []byte, p int, v T) int {
	for v >= 0x80 {
		buf[p] = byte(v) | 0x80
		v >>= 7
		p++
	}
	buf[p] = byte(v)
	return p + 1
}

// ErrMalformed is a lane frame that does not hold a Batch.
var ErrMalformed = errors.New("wire: malformed Batch")

// unmarshalBatch decodes data into b. The message is copied once, into a
// buffer of its own that b.Data then aliases: nothing returns it to a
// pool, so the values sliced from it (a host's results, a task's strings)
// stay valid for as long as anything keeps them.
//
// What a peer controls is bounded by the message size gRPC enforces before
// this runs (the host's MaxCallRecvMsgSize: MaxResultBytes + 1 MiB; the
// plugin's is MaxInt32, the host being its parent): buf is that size, and
// the decoded ends and ids at most 4 and 8 times it, as with the generated
// code. Whether the ends fit the data and the batch is checked by the
// reader (the host's answer checks, the SDK's checkRequest).
func unmarshalBatch(data mem.BufferSlice, b *workerpb.Batch) error {
	buf := make([]byte, data.Len())
	data.CopyTo(buf)
	return decodeMessage(buf, b)
}

// decodeMessage decodes buf, a whole Batch message, into b, aliasing
// Data into buf.
func decodeMessage(buf []byte, b *workerpb.Batch) error {
	if !decodeBatch(buf, b) {
		// Errors, printed lines, an unknown field, or malformed: the
		// generated code decides, and reports what is wrong.
		proto.Reset(b)
		return proto.Unmarshal(buf, b)
	}
	return nil
}

// decodeBatch decodes a plain batch from buf, aliasing Data into it. It
// reports false for anything else (see unmarshalBatch), leaving b partly
// set.
func decodeBatch(buf []byte, b *workerpb.Batch) bool {
	for len(buf) > 0 {
		num, typ, n := protowire.ConsumeTag(buf)
		if n < 0 {
			return false
		}
		buf = buf[n:]
		switch {
		case typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(buf)
			if n < 0 {
				return false
			}
			buf = buf[n:]
			switch num {
			case fieldSeq:
				b.Seq = v
			case fieldFirst:
				b.First = uint32(v) // proto3 truncates a uint32 as protobuf-go does
			case fieldEnds: // an unpacked element
				b.Ends = append(b.Ends, uint32(v))
			case fieldIds:
				b.Ids = append(b.Ids, v)
			case fieldBaseID:
				b.BaseId = v
			case fieldAttempt:
				b.Attempt = uint32(v)
			case fieldCancel:
				b.Cancel = v != 0
			default:
				return false
			}
		case typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(buf)
			if n < 0 {
				return false
			}
			buf = buf[n:]
			var ok bool
			switch num {
			case fieldData:
				b.Data, ok = v[:len(v):len(v)], true
			case fieldEnds:
				b.Ends, ok = consumeVarints(b.Ends, v)
			case fieldIds:
				b.Ids, ok = consumeVarints(b.Ids, v)
			}
			if !ok {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// consumeVarints appends the packed varints in p to vs. Item boundaries
// are one to three bytes each: those are decoded inline from an 8-byte
// load, two at a time when both are three bytes long (the ends of a batch
// past 16 KiB of items).
func consumeVarints[T uint32 | uint64](vs []T, p []byte) ([]T, bool) {
	n := len(vs)
	vs = slices.Grow(vs, countVarints(p))
	vs = vs[:cap(vs)]
	i := 0
	for i+8 <= len(p) && n+1 < len(vs) {
		w := binary.LittleEndian.Uint64(p[i:])
		if w&0x808080808080 == 0x008080008080 {
			vs[n] = T(w&0x7f | w>>1&0x3f80 | w>>2&0x1fc000)
			w >>= 24
			vs[n+1] = T(w&0x7f | w>>1&0x3f80 | w>>2&0x1fc000)
			n, i = n+2, i+6
			continue
		}
		switch {
		case w&0x80 == 0:
			vs[n] = T(w & 0x7f)
			i++
		case w&0x8000 == 0:
			vs[n] = T(w&0x7f | w>>1&0x3f80)
			i += 2
		case w&0x800000 == 0:
			vs[n] = T(w&0x7f | w>>1&0x3f80 | w>>2&0x1fc000)
			i += 3
		default:
			goto rest // four bytes or more
		}
		n++
	}
rest:
	for i < len(p) {
		v, k := protowire.ConsumeVarint(p[i:])
		if k < 0 || n == len(vs) {
			return vs[:n], false
		}
		vs[n] = T(v) // a uint32 truncated, as protobuf-go does
		n++
		i += k
	}
	return vs[:n], true
}

// countVarints counts the varints in p: the bytes under 0x80, each the
// last of one. Eight bytes at a time.
func countVarints(p []byte) int {
	n := 0
	for len(p) >= 8 {
		n += bits.OnesCount64(^binary.LittleEndian.Uint64(p) & 0x8080808080808080)
		p = p[8:]
	}
	for _, c := range p {
		if c < 0x80 {
			n++
		}
	}
	return n
}
