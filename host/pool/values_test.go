package pool_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/pluginpool/pluginpool/host/pool"
)

// A value a plugin returns that is not one line of JSON fails its item with
// a clear error; it never reaches the caller as a value. The worker lives
// on, and the other items of the batch are unaffected.
func TestInvalidValuesFail(t *testing.T) {
	cfg := fixture(t, "echo") // a raw task: returns its input as is
	cfg.Workers = 1
	p := start(t, cfg)
	items := [][]byte{[]byte("1"), []byte("NaN"), []byte("{\"a\":\n1}"), []byte(`"ok"`), []byte("\"\xff\""), []byte(`{"a":[1,"é"]}`)}
	rs, err := mapAll(t, p, items)
	if !errors.Is(err, pool.ErrTask) {
		t.Errorf("Map: %v; want an error matching ErrTask", err)
	}
	want := []string{"", "not valid JSON: NaN", "JSON spread over several lines", "", "not UTF-8: \"\\xff\"", ""}
	for i, r := range rs {
		if want[i] == "" {
			if r.Err != nil || string(r.Value) != string(items[i]) {
				t.Errorf("item %d: %q, %v; want %q", i, r.Value, r.Err, items[i])
			}
			continue
		}
		var te *pool.TaskError
		if !errors.As(r.Err, &te) || te.Kind != pool.KindError || r.Value != nil || !strings.Contains(r.Err.Error(), want[i]) {
			t.Errorf("item %d (%q): value %q, err %v; want a task error containing %q", i, items[i], r.Value, r.Err, want[i])
		}
	}
	if st := p.Stats(); st.Restarts != 0 {
		t.Errorf("%d restarts: an invalid value is the item's failure, not the worker's", st.Restarts)
	}
}

// A plugin's stderr line that go-plugin would take for a log record with a
// number for its message (or a null time) used to crash the host; now the
// record is logged and the work goes on.
func TestLogRecordsOfWrongTypes(t *testing.T) {
	cfg := fixture(t, "badlog")
	cfg.Workers = 1
	p := start(t, cfg)
	rs, err := mapAll(t, p, [][]byte{[]byte("1"), []byte("2")})
	if err != nil || string(rs[0].Value) != "1" || string(rs[1].Value) != "2" {
		t.Fatalf("Map: %+v, %v", rs, err)
	}
}
