package hist

import (
	"testing"
	"time"
)

func TestQuantile(t *testing.T) {
	var h Log2
	if h.Quantile(0.5) != 0 {
		t.Fatal("an empty histogram has a median")
	}
	h.Add(time.Microsecond, 90)
	h.Add(time.Millisecond, 10)
	near := func(got, want time.Duration) bool { return got >= want*7/10 && got <= want*15/10 }
	if p50 := h.Quantile(0.5); !near(p50, time.Microsecond) {
		t.Fatalf("p50 = %s, want about 1µs", p50)
	}
	if p99 := h.Quantile(0.99); !near(p99, time.Millisecond) {
		t.Fatalf("p99 = %s, want about 1ms", p99)
	}
}
