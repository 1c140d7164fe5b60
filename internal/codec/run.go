package codec

// DecodeRun decodes the values of a run, data cut at ends as a batch
// carries them (value i is data[ends[i-1]:ends[i]], from 0 for the first),
// into out, from value from on: out[i] gets value i as Decoder's function
// decodes it into a zero T. An empty value (no value) leaves out[i] as it
// is. It stops at the first value that does not decode and returns its
// index and error (a *DecodeError); else len(ends) and nil.
//
// It is for a caller decoding many results into a slice: int and int64
// go through a loop of their own, without a call through a function value
// or a variable per item (the host's typed Map of 1M ints spent ~15% of
// its CPU there).
func DecodeRun[T any](out []T, data []byte, ends []uint32, from int) (int, error) {
	if len(ends) == 0 {
		return 0, nil
	}
	_ = out[len(ends)-1]
	switch o := any(out).(type) {
	case []int:
		return decodeInts(o, data, ends, from)
	case []int64:
		return decodeInts(o, data, ends, from)
	}
	v := new(T)
	return DecodeRunFunc(out, data, ends, from, v, Decoder(v))
}

// DecodeRunFunc is DecodeRun through decode, which decodes a value into
// *v: it is zeroed before each, and copied to out after.
func DecodeRunFunc[T any](out []T, data []byte, ends []uint32, from int, v *T, decode func([]byte) error) (int, error) {
	prev := valueStart(ends, from)
	for i := from; i < len(ends); i++ {
		end := ends[i]
		if end > prev {
			var zero T
			*v = zero
			if err := decode(data[prev:end:end]); err != nil {
				return i, err
			}
			out[i] = *v
		}
		prev = end
	}
	return len(ends), nil
}

// decodeInts is DecodeRun for ints: ParseInt in a loop, and Decode for
// what it does not take (an exponent, white space, an error to report).
func decodeInts[I int | int64](out []I, data []byte, ends []uint32, from int) (int, error) {
	prev := valueStart(ends, from)
	for i := from; i < len(ends); i++ {
		end := ends[i]
		if end > prev {
			if n, ok := ParseInt(data[prev:end]); ok && n == int64(I(n)) {
				out[i] = I(n)
			} else {
				var x I
				if err := Decode(data[prev:end:end], &x); err != nil {
					return i, err
				}
				out[i] = x
			}
		}
		prev = end
	}
	return len(ends), nil
}

// valueStart returns where value i of a run (data cut at ends) begins.
func valueStart(ends []uint32, i int) uint32 {
	if i == 0 {
		return 0
	}
	return ends[i-1]
}
