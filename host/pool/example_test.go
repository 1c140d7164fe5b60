package pool_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"

	"github.com/pluginpool/pluginpool/host/pool"
)

// exampleConfig runs this test binary's "double" fixture as the plugin; a
// real program names an executable built with the SDK, such as
// bin/plugins/double.
func exampleConfig() pool.Config {
	exe, _ := os.Executable()
	return pool.Config{
		Path:    exe,
		Workers: 2,
		Env:     []string{fixtureEnv + "=double", "GORACE=atexit_sleep_ms=0"},
	}
}

// Map returns one result per item, in input order, like Python's Pool.map.
func ExamplePool_Map() {
	ctx := context.Background()
	p, err := pool.Start(ctx, exampleConfig())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()

	results, err := p.Map(ctx, [][]byte{[]byte("1"), []byte("2"), []byte("x"), []byte("4")})
	for i, r := range results {
		if r.Err != nil {
			fmt.Printf("item %d failed: %v\n", i, errors.Is(r.Err, pool.ErrTask))
			continue
		}
		fmt.Printf("item %d: %s\n", i, r.Value)
	}
	fmt.Println(err != nil)
	// Output:
	// item 0: 2
	// item 1: 4
	// item 2 failed: true
	// item 3: 8
	// true
}

// Imap reads its input lazily and yields results in input order as they
// complete; ImapUnordered yields them as they complete.
func ExamplePool_Imap() {
	ctx := context.Background()
	p, err := pool.Start(ctx, exampleConfig())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()

	items := slices.Values([][]byte{[]byte("10"), []byte("20"), []byte("30")})
	for i, r := range p.Imap(ctx, items) {
		fmt.Println(i, string(r.Value))
	}
	// Output:
	// 0 20
	// 1 40
	// 2 60
}

// ImapBatches hands over runs of answered items: a loop over each run
// costs less than Imap's iterator step per item. The slice is reused
// after each step; the results in it may be kept.
func ExamplePool_ImapBatches() {
	ctx := context.Background()
	p, err := pool.Start(ctx, exampleConfig())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()

	items := func(yield func([]byte) bool) {
		for i := range 10000 {
			if !yield(strconv.AppendInt(nil, int64(i), 10)) {
				return
			}
		}
	}
	n, sum := 0, 0
	for first, rs := range p.ImapBatches(ctx, items) {
		if first != n {
			fmt.Println("out of order:", first, n)
		}
		for _, r := range rs {
			v, _ := strconv.Atoi(string(r.Value))
			sum += v
		}
		n += len(rs)
	}
	fmt.Println(n, "results, summing to", sum)
	// Output:
	// 10000 results, summing to 99990000
}

// Typed calls a plugin with Go values: it encodes each item as JSON and
// decodes each result, as the plugin's sdk.Func does on its side.
func ExampleTyped() {
	ctx := context.Background()
	p, err := pool.Start(ctx, exampleConfig())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()

	double := pool.Typed[int, int](p)
	ys, err := double.Map(ctx, []int{1, 2, 3, 4, 5})
	fmt.Println(ys, err)
	y, err := double.Apply(ctx, 21)
	fmt.Println(y, err)
	// Output:
	// [2 4 6 8 10] <nil>
	// 42 <nil>
}

// A typed Map returns every value it can; its error lists the items that
// failed, each with its own error.
func ExampleCaller_Map() {
	ctx := context.Background()
	p, err := pool.Start(ctx, exampleConfig())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()

	ys, err := pool.Typed[any, int](p).Map(ctx, []any{1, "x", 3, 1.5})
	fmt.Println(ys)
	if ie, ok := errors.AsType[*pool.ItemsError](err); ok {
		for _, f := range ie.Failed {
			fmt.Printf("item %d failed: task error %v\n", f.Index, errors.Is(f.Err, pool.ErrTask))
		}
	}
	// Output:
	// [2 0 6 0]
	// item 1 failed: task error true
	// item 3 failed: task error true
}

// A typed Imap runs any sequence lazily, in bounded memory, yielding each
// result with its index in input order.
func ExampleCaller_Imap() {
	ctx := context.Background()
	p, err := pool.Start(ctx, exampleConfig())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()

	squares := func(yield func(int) bool) {
		for i := 1; i <= 3; i++ {
			if !yield(i * i) {
				return
			}
		}
	}
	for i, r := range pool.Typed[int, int](p).Imap(ctx, squares) {
		fmt.Println(i, r.Value, r.Err)
	}
	// Output:
	// 0 2 <nil>
	// 1 8 <nil>
	// 2 18 <nil>
}
