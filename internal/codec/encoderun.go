package codec

import "unsafe"

// EncodeRun appends the JSON encodings of items to data, as Encoder's
// function encodes each, while they fit: it stops before an item that
// would take data past its capacity, and when ends is full. The end of
// item k, len(data) after it, goes to ends[k]. It returns how many items
// it appended, and data. An item that does not encode stops it too: n is
// that item's index and err its error.
//
// It is for a caller filling a batch buffer: int and int64 go through a
// loop of their own, without a call through a function value per item.
func EncodeRun[T any](data []byte, ends []uint32, items []T) (n int, out []byte, err error) {
	switch xs := any(items).(type) {
	case []int:
		return encodeInts(data, ends, xs)
	case []int64:
		return encodeInts(data, ends, xs)
	}
	v := new(T)
	return EncodeRunFunc(data, ends, items, v, Encoder(v))
}

// EncodeRunFunc is EncodeRun through encode, which appends the encoding of
// *v: each item is set in *v in turn.
func EncodeRunFunc[T any](data []byte, ends []uint32, items []T, v *T, encode func([]byte) ([]byte, error)) (n int, out []byte, err error) {
	limit := min(len(items), len(ends))
	for ; n < limit; n++ {
		*v = items[n]
		b, err := encode(data)
		if err != nil {
			return n, data, err
		}
		if unsafe.SliceData(b) != unsafe.SliceData(data) || cap(b) != cap(data) {
			return n, data, nil // in a buffer of its own: it did not fit
		}
		data = b
		ends[n] = uint32(len(data))
	}
	return n, data, nil
}

// encodeInts is EncodeRun for ints, which always encode: AppendInt in a
// loop, while data has room for the longest.
func encodeInts[I int | int64](data []byte, ends []uint32, items []I) (n int, out []byte, err error) {
	limit := min(len(items), len(ends))
	for ; n < limit && cap(data)-len(data) >= maxIntLen; n++ {
		data = AppendInt(data, int64(items[n]))
		ends[n] = uint32(len(data))
	}
	return n, data, nil
}

// maxIntLen is the longest encoding of an int64: "-9223372036854775808".
const maxIntLen = 20
