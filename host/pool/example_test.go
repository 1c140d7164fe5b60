package pool_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"

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
