package pool_test

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
)

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

func TestMapDoubles(t *testing.T) {
	p := start(t, fixture(t, "double"))
	rs, err := p.Map(context.Background(), ints(10000))
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rs {
		if string(r.Value) != strconv.Itoa(2*i) {
			t.Fatalf("item %d: got %q (err %v)", i, r.Value, r.Err)
		}
	}
	t.Logf("stats: %+v", p.Stats())
}

func runHost() int { return 0 }
