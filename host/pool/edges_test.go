package pool_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/pluginpool/pluginpool/host/pool"
	"github.com/pluginpool/pluginpool/internal/testkit"
)

// badBytes is what the badbytes fixture fails with and prints.
const badBytes = testkit.BadBytes

// Any bytes travel (issue 8, case 2): an item of invalid UTF-8, an error
// message and a printed line full of control bytes come back exactly as
// sent, without breaking the stream: no worker restarts, nothing retried,
// only the failing items fail. Error() shows the message escaped. A value
// the plugin returns must be one line of JSON (issue 10): echoed, the item
// of invalid UTF-8 fails (escaped in its message), and one of JSON escapes
// for the same characters comes back exactly.
func TestBadBytesTravel(t *testing.T) {
	p := start(t, fixture(t, "badbytes"))
	items := [][]byte{[]byte("1"), []byte(`"fail"`), []byte(`"print"`), []byte("\"\xff\x00\""), []byte("3"), []byte(`"\u00ff\u0000\u001b"`)}
	rs, err := mapAll(t, p, items)
	if err == nil {
		t.Error("Map error = nil, want two failed items")
	}
	for i, want := range []string{"1", "", "1", "", "3", `"\u00ff\u0000\u001b"`} {
		if i != 1 && i != 3 && (rs[i].Err != nil || string(rs[i].Value) != want) {
			t.Errorf("item %d = %q, %v; want %q", i, rs[i].Value, rs[i].Err, want)
		}
	}
	if !errors.Is(rs[3].Err, pool.ErrTask) || rs[3].Value != nil || !strings.Contains(rs[3].Err.Error(), `not UTF-8: "\xff\x00"`) {
		t.Errorf("item 3 = %q, %v; want a task error: the value is not UTF-8", rs[3].Value, rs[3].Err)
	}
	var te *pool.TaskError
	if !errors.As(rs[1].Err, &te) || te.Message != badBytes || rs[1].Value != nil {
		t.Fatalf("item 1 = %q, %#v; want a TaskError with the message as sent", rs[1].Value, rs[1].Err)
	}
	if got, want := te.Error(), `badbytes: bad \xff\x00\x1b[31mred\xc3`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !slices.Equal(rs[2].Output, []string{badBytes}) {
		t.Errorf("printed lines %q, want %q", rs[2].Output, []string{badBytes})
	}
	if st := p.Stats(); st.Restarts != 0 || st.Retries != 0 || st.Failed != 2 || st.Succeeded != 4 {
		t.Errorf("stats %+v; want no restart, no retry, 2 failed, 4 succeeded", st)
	}
}

// Error messages show a plugin's bytes escaped and bounded: a message, or
// a stderr line, quoting 20 MB comes out as 16 KiB.
func TestErrorsEscapePluginBytes(t *testing.T) {
	huge := strings.Repeat("7", 20<<20)
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&pool.TaskError{Plugin: "p", Kind: pool.KindDecode, Message: "cannot decode \x1b[2J"}, `p: bad input: cannot decode \x1b[2J`},
		{&pool.TaskError{Plugin: "p", Kind: pool.KindPanic, Message: "panic: \xff\n\tmain.go:1"}, "p: task panicked: \\xff\n\tmain.go:1"},
		{&pool.CrashError{Plugin: "p", Slot: 1, Pid: 2, Exit: "exit status 2", Task: pool.TaskRunning, Attempts: 1, Stderr: []string{"why\x07", "\x1b]0;title"}},
			"p: worker 1 (pid 2) died while running this task (exit status 2); not run again: the plugin does not declare itself idempotent; last stderr lines:\n  why\\x07\n  \\x1b]0;title"},
		{&pool.StartError{Plugin: "p", Path: "/x", Err: pool.ErrInit, Stderr: []string{"\r\x00"}},
			"p: cannot start /x: plugin init failed; last stderr lines:\n  \\r\\x00"},
		{&pool.StartError{Plugin: "p", Path: "/x", Err: fmt.Errorf("%w: no \x1b[5mdatabase", pool.ErrInit)},
			`p: cannot start /x: plugin init failed: no \x1b[5mdatabase`},
		{&pool.TaskError{Plugin: "p", Kind: pool.KindError, Message: huge}, "p: " + huge[:16<<10] + "… (20971520 bytes)"},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("%T.Error() = %.200q, want %.200q", tc.err, got, tc.want)
		}
	}
}

// Config fields past their bounds are rejected, each named with its
// bound (issue 8, case 8): --chunk-size 1000000000000 died of "out of
// memory" and 100000 workers started 100000 processes.
func TestConfigBounds(t *testing.T) {
	_, err := pool.Start(context.Background(), pool.Config{Path: "/bin/true", Workers: 100000, ChunkSize: 1_000_000_000_000,
		InFlight: 65, MaxAttempts: 101, MaxRestarts: 1<<20 + 1, TaskTimeout: pool.TaskTimeoutLimit + 1,
		KillGrace: 2 * pool.KillGraceLimit, RestartWindow: 48 * pool.RestartWindowLimit, StartTimeout: pool.StartTimeoutLimit + 1})
	if !errors.Is(err, pool.ErrInvalidConfig) {
		t.Fatalf("Start = %v; want ErrInvalidConfig", err)
	}
	for _, want := range []string{
		"Workers must be at most 1024, got 100000",
		"ChunkSize must be at most 1048576, got 1000000000000",
		"InFlight must be at most 64, got 65",
		"MaxAttempts must be at most 100, got 101",
		"MaxRestarts must be at most 1048576, got 1048577",
		"TaskTimeout must be at most 168h0m0s, got 168h0m0.000000001s",
		"KillGrace must be at most 1h0m0s, got 2h0m0s",
		"RestartWindow must be at most 24h0m0s, got 1152h0m0s",
		"StartTimeout must be at most 1h0m0s, got 1h0m0.000000001s",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q\ndoes not say %q", err, want)
		}
	}
}
