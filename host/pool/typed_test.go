package pool_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pluginpool/pluginpool/host/pool"
)

// typedCtx bounds a typed call by hangBound.
func typedCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangBound)
	t.Cleanup(cancel)
	return ctx
}

func TestTypedMap(t *testing.T) {
	p := start(t, fixture(t, "double"))
	double := pool.Typed[int, int](p)
	ctx := typedCtx(t)
	// Enough items for many batches of the adaptive size.
	xs := make([]int, 50_000)
	for i := range xs {
		xs[i] = i - 100
	}
	ys, err := double.Map(ctx, xs)
	if err != nil {
		t.Fatalf("Map: %v", err)
	}
	if len(ys) != len(xs) {
		t.Fatalf("%d values for %d items", len(ys), len(xs))
	}
	for i, y := range ys {
		if y != 2*xs[i] {
			t.Fatalf("item %d: %d, want %d", i, y, 2*xs[i])
		}
	}
	if ys, err := double.Map(ctx, nil); err != nil || len(ys) != 0 {
		t.Errorf("Map(nil) = %v, %v; want no values, no error", ys, err)
	}
	if y, err := double.Apply(ctx, 21); err != nil || y != 42 {
		t.Errorf("Apply(21) = %d, %v; want 42", y, err)
	}
}

// Items of every size go through Map's batches whole, in order: small
// ones by the thousand, ones larger than a batch's room or than a whole
// batch, and one over MaxItemBytes, which fails alone.
func TestTypedMapSizes(t *testing.T) {
	cfg := fixture(t, "echo")
	cfg.MaxItemBytes = 3 << 20
	p := start(t, cfg)
	xs := make([]string, 20_000)
	for i := range xs {
		xs[i] = strconv.Itoa(i)
		switch i % 5000 {
		case 1000:
			xs[i] = strings.Repeat("m", 100_000) // more than a batch's room
		case 2000:
			xs[i] = strings.Repeat("l", 2<<20) // more than a whole batch (1 MiB)
		case 3000:
			if i == 3000 {
				xs[i] = strings.Repeat("x", 4<<20) // over MaxItemBytes
			}
		}
	}
	check := func(p *pool.Pool, tooLarge int) {
		t.Helper()
		ys, err := pool.Typed[string, string](p).Map(typedCtx(t), xs)
		ie, ok := errors.AsType[*pool.ItemsError](err)
		if !ok || len(ie.Failed) != 1 || ie.Failed[0].Index != tooLarge || !errors.Is(err, pool.ErrTooLarge) {
			t.Fatalf("Map: %v; want item %d alone to fail with ErrTooLarge", err, tooLarge)
		}
		for i, y := range ys {
			if want := xs[i]; i != tooLarge && y != want {
				t.Fatalf("item %d: %d bytes %.10q, want %d bytes %.10q", i, len(y), y, len(want), want)
			}
		}
	}
	check(p, 3000)
	// An item over the limit that fits in a batch's room.
	cfg.MaxItemBytes = 50_000
	for i := range xs {
		switch {
		case i == 1000:
			xs[i] = strings.Repeat("x", 60_000)
		case i%5000 == 1000, i%5000 == 2000:
			xs[i] = strings.Repeat("l", 40_000)
		case i == 3000:
			xs[i] = "short"
		}
	}
	p = start(t, cfg)
	check(p, 1000)
	// Among items of 20 KB, the batches have room for it.
	xs = xs[:2000]
	for i := range xs {
		xs[i] = strconv.Itoa(i) + strings.Repeat("m", 20_000)
	}
	xs[1000] = strings.Repeat("x", 60_000)
	check(p, 1000)
}

// Items that encode slowly leave workers idle: they take the items
// published so far from the batch the Map is filling, and the rest go
// into the next one, none lost or repeated.
func TestTypedMapSlowEncode(t *testing.T) {
	p := start(t, fixture(t, "double"))
	n := 0
	slow := pool.Typed[int, int](p).WithCodec(func(buf []byte, v *int) ([]byte, error) {
		if n++; n%300 == 0 {
			time.Sleep(time.Millisecond)
		}
		return strconv.AppendInt(buf, int64(*v), 10), nil
	}, nil)
	xs := make([]int, 6000)
	for i := range xs {
		xs[i] = i
	}
	ys, err := slow.Map(typedCtx(t), xs)
	if err != nil {
		t.Fatal(err)
	}
	for i, y := range ys {
		if y != 2*i {
			t.Fatalf("item %d: %d, want %d", i, y, 2*i)
		}
	}
}

// A failed item fails alone: its value is zero, the error lists it with
// its own error, and says what Map's error says.
func TestTypedMapErrors(t *testing.T) {
	p := start(t, fixture(t, "errors"))
	f := pool.Typed[any, float64](p)
	items := []any{1, "fail", 2.5, "panic", 4}
	ys, err := f.Map(typedCtx(t), items)
	if want := []float64{2, 0, 5, 0, 8}; !slices.Equal(ys, want) {
		t.Errorf("values %v, want %v", ys, want)
	}
	ie, ok := errors.AsType[*pool.ItemsError](err)
	if !ok {
		t.Fatalf("error %v (%T), want an *ItemsError", err, err)
	}
	if ie.Items != 5 || len(ie.Failed) != 2 || ie.Failed[0].Index != 1 || ie.Failed[1].Index != 3 {
		t.Fatalf("ItemsError %+v, want items 1 and 3 of 5 failed", ie)
	}
	for _, f := range ie.Failed {
		if !errors.Is(f.Err, pool.ErrTask) {
			t.Errorf("item %d: %v, want ErrTask", f.Index, f.Err)
		}
	}
	if !errors.Is(err, pool.ErrTask) {
		t.Errorf("errors.Is(%v, ErrTask) = false", err)
	}
	// The same message as the untyped Map's.
	raw, rawErr := mapAll(t, p, [][]byte{[]byte("1"), []byte(`"fail"`), []byte("2.5"), []byte(`"panic"`), []byte("4")})
	_ = raw
	if err.Error() != rawErr.Error() {
		t.Errorf("typed Map's error\n %v\nuntyped Map's\n %v", err, rawErr)
	}
}

// An item that does not encode does not run and fails with a
// *CodecError; every other item keeps its index, in order or not.
func TestTypedEncodeError(t *testing.T) {
	p := start(t, fixture(t, "double"))
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		n    int
		late bool // only items after the first batches fail to encode
	}{{1, false}, {2, false}, {3, false}, {100, false}, {5000, false}, {40000, true}} {
		n := tc.n
		// Items that do not encode: first, last, a run, and random ones.
		bad := map[int]bool{0: true, n - 1: true}
		for range n / 10 {
			bad[rng.IntN(n)] = true
		}
		if n > 50 {
			bad[20], bad[21], bad[22] = true, true, true
		}
		if tc.late {
			// Whole batches are answered before the first skip: a
			// local pool's typed calls take those as they are.
			bad = map[int]bool{39000: true, 39001: true, n - 1: true}
		}
		xs := make([]json.Number, n)
		for i := range xs {
			xs[i] = json.Number(strconv.Itoa(i))
			if bad[i] {
				xs[i] = "not a number"
			}
		}
		caller := pool.Typed[json.Number, int](p)
		check := func(how string, i int, y int, err error) {
			t.Helper()
			if bad[i] {
				if ce, ok := errors.AsType[*pool.CodecError](err); !ok || ce.Result || !errors.Is(err, pool.ErrCodec) {
					t.Fatalf("n=%d %s item %d: %v, want an encoding *CodecError", n, how, i, err)
				}
				return
			}
			if err != nil || y != 2*i {
				t.Fatalf("n=%d %s item %d: %d, %v; want %d", n, how, i, y, err, 2*i)
			}
		}
		ys, err := caller.Map(typedCtx(t), xs)
		ie, _ := errors.AsType[*pool.ItemsError](err)
		if ie == nil || len(ie.Failed) != len(bad) {
			t.Fatalf("n=%d: Map error %v, want %d items failed", n, err, len(bad))
		}
		failed := map[int]error{}
		for _, f := range ie.Failed {
			failed[f.Index] = f.Err
		}
		for i := range n {
			check("Map", i, ys[i], failed[i])
		}
		// Through an executor that is not a *Pool, results come one by
		// one: the same.
		if n <= 5000 {
			ys, err := pool.Typed[json.Number, int](executorOnly{p}).Map(typedCtx(t), xs)
			ie, _ := errors.AsType[*pool.ItemsError](err)
			if ie == nil || len(ie.Failed) != len(bad) {
				t.Fatalf("n=%d: Map through an Executor: error %v, want %d items failed", n, err, len(bad))
			}
			for _, f := range ie.Failed {
				check("Map through an Executor", f.Index, 0, f.Err)
			}
			for i := range n {
				if !bad[i] {
					check("Map through an Executor", i, ys[i], nil)
				}
			}
		}
		for how, seq := range map[string]func(context.Context, iter.Seq[json.Number]) iter.Seq2[int, pool.TypedResult[int]]{
			"Imap": caller.Imap, "ImapUnordered": caller.ImapUnordered,
		} {
			seen := make([]bool, n)
			next := 0
			for i, r := range seq(typedCtx(t), slices.Values(xs)) {
				if how == "Imap" && i != next {
					t.Fatalf("n=%d Imap: index %d, want %d", n, i, next)
				}
				next++
				if seen[i] {
					t.Fatalf("n=%d %s: index %d twice", n, how, i)
				}
				seen[i] = true
				check(how, i, r.Value, r.Err)
			}
			if next != n {
				t.Fatalf("n=%d %s: %d results, want %d", n, how, next, n)
			}
		}
	}
	// Apply does not run what does not encode.
	if _, err := pool.Typed[float64, float64](p).Apply(typedCtx(t), math.NaN()); !errors.Is(err, pool.ErrCodec) {
		t.Errorf("Apply(NaN): %v, want ErrCodec", err)
	}
}

// executorOnly is a pool seen only as an Executor: a typed caller takes
// its results one by one, as it would a cluster's.
type executorOnly struct{ pool.Executor }

// On a closed pool every item of a typed Map fails: those that encode
// with ErrClosed, the others with their *CodecError.
func TestTypedMapClosed(t *testing.T) {
	p := start(t, fixture(t, "double"))
	p.Close()
	xs := []json.Number{"1", "x", "3", "y"}
	_, err := pool.Typed[json.Number, int](p).Map(typedCtx(t), xs)
	ie, ok := errors.AsType[*pool.ItemsError](err)
	if !ok || len(ie.Failed) != 4 {
		t.Fatalf("Map on a closed pool: %v, want all 4 items failed", err)
	}
	for _, f := range ie.Failed {
		want := pool.ErrClosed
		if xs[f.Index] == "x" || xs[f.Index] == "y" {
			want = pool.ErrCodec
		}
		if !errors.Is(f.Err, want) {
			t.Errorf("item %d: %v, want %v", f.Index, f.Err, want)
		}
	}
}

// A result that does not decode into Out fails its item with a
// *CodecError quoting it.
func TestTypedDecodeError(t *testing.T) {
	p := start(t, fixture(t, "double"))
	_, err := pool.Typed[int, string](p).Apply(typedCtx(t), 21)
	ce, ok := errors.AsType[*pool.CodecError](err)
	if !ok || !ce.Result || string(ce.Value) != "42" || ce.Type != "string" {
		t.Fatalf("Apply: %v (%T), want a decoding *CodecError for 42", err, err)
	}
	if want := "cannot decode the result 42 as string: want string, got a JSON number"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	_, err = pool.Typed[int, string](p).Map(typedCtx(t), []int{1, 2})
	if ie, ok := errors.AsType[*pool.ItemsError](err); !ok || len(ie.Failed) != 2 || !errors.Is(err, pool.ErrCodec) {
		t.Errorf("Map: %v, want both items failed with ErrCodec", err)
	}

	// Among many: every third result is not an int; each fails alone,
	// in place, and the others are all there.
	echo := start(t, fixture(t, "echo"))
	xs := make([]float64, 5000)
	for i := range xs {
		xs[i] = float64(i)
		if i%3 == 1 {
			xs[i] += 0.25
		}
	}
	for _, how := range []string{"JSON", "WithCodec"} {
		c := pool.Typed[float64, int](echo)
		if how == "WithCodec" {
			c = c.WithCodec(nil, func(data []byte, v *int) error { return json.Unmarshal(data, v) })
		}
		ys, err := c.Map(typedCtx(t), xs)
		ie, ok := errors.AsType[*pool.ItemsError](err)
		if !ok || len(ie.Failed) != 1667 {
			t.Fatalf("%s: Map: %v, want 1667 items failed", how, err)
		}
		for k, f := range ie.Failed {
			ce, ok := errors.AsType[*pool.CodecError](f.Err)
			if f.Index != 3*k+1 || !ok || !ce.Result || string(ce.Value) != strconv.Itoa(f.Index)+".25" {
				t.Fatalf("%s: failure %d: item %d, %v; want item %d failing to decode %d.25", how, k, f.Index, f.Err, 3*k+1, 3*k+1)
			}
		}
		for i, y := range ys {
			want := i
			if i%3 == 1 {
				want = 0 // failed: the zero Out
			}
			if y != want {
				t.Fatalf("%s: item %d = %d, want %d", how, i, y, want)
			}
		}
	}
}

// Lines tasks print go to the caller's output in input order during Map
// and Apply, and travel in TypedResult.Output with Imap.
func TestTypedOutput(t *testing.T) {
	p := start(t, fixture(t, "print"))
	var out lines
	printer := pool.Typed[int, struct{}](p).WithOutput(&out)
	ctx := typedCtx(t)
	if _, err := printer.Map(ctx, []int{1, 2, 10, 3}); err != nil {
		t.Fatal(err)
	}
	want := "Number: 1\nNumber: 2\nNumber: 10\nline one\nline two\nNumber: 3\n"
	if out.String() != want {
		t.Errorf("Map printed %q, want %q", out.String(), want)
	}
	for i, w := range out.Writes() {
		if !strings.HasSuffix(w, "\n") || strings.Count(w, "\n") != 1 {
			t.Errorf("write %d is %q, want one whole line", i, w)
		}
	}
	if _, err := printer.Apply(ctx, 7); err != nil || !strings.HasSuffix(out.String(), "Number: 7\n") {
		t.Errorf("Apply(7): %v, printed %q", err, out.String())
	}
	before := out.String()
	for i, r := range printer.Imap(ctx, slices.Values([]int{4, 5})) {
		if r.Err != nil || !slices.Equal(r.Output, []string{"Number: " + strconv.Itoa(4+i)}) {
			t.Errorf("Imap item %d: %+v", i, r)
		}
	}
	if out.String() != before {
		t.Errorf("Imap wrote to the output: %q", strings.TrimPrefix(out.String(), before))
	}
	if _, err := pool.Typed[int, struct{}](p).WithOutput(nil).Map(ctx, []int{1}); err != nil {
		t.Errorf("WithOutput(nil): %v", err)
	}
}

// Cancelling a typed call fails what did not finish with ctx's error; the
// values that came back stay. Imap stops reading items, and yields one
// result for every item it read.
func TestTypedMapCancel(t *testing.T) {
	p := start(t, fixture(t, "slow"))
	ms := make([]int, 40)
	for i := range ms {
		ms[i] = 5
	}
	ms[30] = int(hangBound.Milliseconds()) * 2 // never finishes
	ctx, cancel := context.WithCancel(typedCtx(t))
	defer cancel()
	next := 0
	for i, r := range pool.Typed[int, int](p).Imap(ctx, slices.Values(ms)) {
		if i != next {
			t.Fatalf("Imap: index %d, want %d", i, next)
		}
		next++
		if i == 0 {
			cancel() // item 30 cannot have finished
		}
		if r.Err != nil && !errors.Is(r.Err, context.Canceled) || i == 30 && r.Err == nil {
			t.Errorf("Imap item %d: %v, want a value or context.Canceled", i, r.Err)
		}
	}

	ctx2, cancel2 := context.WithCancel(typedCtx(t))
	before := p.Stats().Succeeded
	cancelled := make(chan struct{})
	go func() {
		defer close(cancelled)
		defer cancel2()
		for p.Stats().Succeeded < before+10 && ctx2.Err() == nil {
			time.Sleep(time.Millisecond)
		}
	}()
	vals, err := pool.Typed[int, int](p).Map(ctx2, ms)
	<-cancelled
	ie, ok := errors.AsType[*pool.ItemsError](err)
	if !ok || !errors.Is(err, context.Canceled) {
		t.Fatalf("Map: %v, want an *ItemsError matching context.Canceled", err)
	}
	failed := map[int]bool{}
	for _, f := range ie.Failed {
		failed[f.Index] = true
		if !errors.Is(f.Err, context.Canceled) {
			t.Errorf("item %d: %v, want context.Canceled", f.Index, f.Err)
		}
	}
	if !failed[30] {
		t.Error("item 30 did not fail")
	}
	for i, v := range vals {
		if !failed[i] && v != 5 {
			t.Errorf("item %d: %d, want 5", i, v)
		}
	}
}

// When the pool degrades, a typed Map still gives every item an outcome:
// each one it did not run fails with ErrNotRun.
func TestTypedMapDegraded(t *testing.T) {
	cfg := fixture(t, "crashall")
	cfg.Workers, cfg.MaxRestarts = 1, 1
	p := start(t, cfg)
	xs := make([]int, 200)
	ys, err := pool.Typed[int, int](p).Map(typedCtx(t), xs)
	ie, ok := errors.AsType[*pool.ItemsError](err)
	if !ok || len(ie.Failed) != len(xs) || len(ys) != len(xs) {
		t.Fatalf("Map: %v, want all %d items failed", err, len(xs))
	}
	if !errors.Is(err, pool.ErrNotRun) || !errors.Is(err, pool.ErrDegraded) {
		t.Errorf("Map: %v, want ErrNotRun and ErrDegraded", err)
	}
	for i, f := range ie.Failed {
		if f.Index != i {
			t.Fatalf("failure %d is item %d", i, f.Index)
		}
	}
}

// WithCodec: items go out in the caller's encoding and results come back
// through its decoder; an encoding or decoding error fails its item
// alone; a result that is not one line of JSON fails its item with
// ErrTask, whatever the codec, as the pool checks every value.
func TestTypedWithCodec(t *testing.T) {
	p := start(t, fixture(t, "echo"))
	type point struct{ X, Y int }
	asArray := func(buf []byte, v *point) ([]byte, error) {
		if v.X < 0 {
			return nil, errors.New("negative X")
		}
		return fmt.Appendf(buf, "[%d,%d]", v.X, v.Y), nil
	}
	fromArray := func(data []byte, v *point) error {
		var xy [2]int
		if err := json.Unmarshal(data, &xy); err != nil {
			return err
		}
		*v = point{xy[0], xy[1]}
		return nil
	}
	c := pool.Typed[point, point](p).WithCodec(asArray, fromArray)
	ctx := typedCtx(t)
	ps, err := c.Map(ctx, []point{{1, 2}, {-1, 0}, {3, 4}})
	if want := []point{{1, 2}, {}, {3, 4}}; !slices.Equal(ps, want) {
		t.Errorf("values %v, want %v", ps, want)
	}
	ie, ok := errors.AsType[*pool.ItemsError](err)
	if !ok || len(ie.Failed) != 1 || ie.Failed[0].Index != 1 || !errors.Is(ie.Failed[0].Err, pool.ErrCodec) {
		t.Fatalf("Map: %v, want item 1 failed with ErrCodec", err)
	}
	if !strings.Contains(err.Error(), "negative X") {
		t.Errorf("Map's error %q does not say why", err)
	}
	// A nil function keeps the other side's codec: JSON objects out.
	obj := pool.Typed[point, point](p).WithCodec(nil, fromArray)
	if _, err := obj.Apply(ctx, point{5, 6}); !errors.Is(err, pool.ErrCodec) {
		t.Errorf("Apply with JSON items and array results: %v, want ErrCodec (the object does not decode as an array)", err)
	}
	// Not JSON: the pool fails the value before the decoder sees it.
	called := false
	plain := pool.Typed[point, point](p).WithCodec(
		func(buf []byte, v *point) ([]byte, error) { return fmt.Appendf(buf, "%d %d", v.X, v.Y), nil },
		func(data []byte, v *point) error { called = true; return nil })
	_, err = plain.Apply(ctx, point{7, 8})
	if !errors.Is(err, pool.ErrTask) || errors.Is(err, pool.ErrCodec) || called {
		t.Errorf("a value that is not JSON: %v (decoder called: %v), want ErrTask from the pool's check", err, called)
	}
}
