package testkit

import (
	"bytes"
	"runtime/pprof"
	"testing"
	"time"
)

// Eventually polls cond until it holds, failing t if it does not within d.
// Tests wait on conditions with generous deadlines, never on sleeps: the
// machine may be busy with others' work. It polls every few milliseconds
// at first, less often as time goes by.
func Eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for pause := time.Millisecond; !cond(); pause = min(2*pause, 20*time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(pause)
	}
}

// Bounded runs f and fails t, with every goroutine's stack, if f does not
// return within d.
func Bounded(t testing.TB, d time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(d):
		var b bytes.Buffer
		pprof.Lookup("goroutine").WriteTo(&b, 2)
		t.Fatalf("%s did not return within %s; goroutines:\n%s", what, d, b.String())
	}
}
