package codec

import "testing"

func BenchmarkDecodeInt(b *testing.B) {
	in := []byte("-1234567")
	b.ReportAllocs()
	for b.Loop() {
		var n int
		if err := Decode(in, &n); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendInt(b *testing.B) {
	out := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		n := -1234567
		var err error
		if out, err = Append(out[:0], &n); err != nil {
			b.Fatal(err)
		}
	}
}
