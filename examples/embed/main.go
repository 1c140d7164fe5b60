// Command embed is the README's "Use it from Go" program: a Go program
// that keeps a pool of double plugin processes and runs items through
// them, typed and raw. Build the plugin first (make build), then:
//
//	go run ./examples/embed                       # runs bin/plugins/double
//	go run ./examples/embed path/to/double        # or another build of it
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/pluginpool/pluginpool/host/pool"
)

func main() {
	plugin := "bin/plugins/double"
	if len(os.Args) > 1 {
		plugin = os.Args[1]
	}
	if err := run(context.Background(), plugin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "embed:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, plugin string, out io.Writer) error {
	p, err := pool.Start(ctx, pool.Config{
		Path:        plugin,          // the plugin executable; the only field required
		Workers:     2,               // processes; default one per core
		TaskTimeout: 5 * time.Second, // per task; default none
	})
	if err != nil {
		return err // a *pool.StartError: missing file, not a plugin, Init failed, ...
	}
	defer p.Close() // drains, then stops the processes; p.Terminate() kills now

	// Typed: the plugin is sdk.Func(func(ctx, In) (Out, error)); the host
	// encodes each In as JSON and decodes each result into an Out.
	double := pool.Typed[int, int](p)
	ys, err := double.Map(ctx, []int{1, 2, 3, 4, 5}) // in input order
	if err != nil {
		return err // a *pool.ItemsError: every failed item, and why
	}
	fmt.Fprintln(out, ys)

	y, err := double.Apply(ctx, 21)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, y)

	// Imap reads its input lazily and holds a bounded number of results:
	// an input of any length runs in constant memory.
	sum := 0
	for _, r := range double.Imap(ctx, slices.Values([]int{10, 20, 30})) {
		if r.Err != nil {
			return r.Err
		}
		sum += r.Value
	}
	fmt.Fprintln(out, sum)

	// One item failing does not fail the others.
	_, err = pool.Typed[any, int](p).Map(ctx, []any{1, "two", 3})
	if ie, ok := errors.AsType[*pool.ItemsError](err); ok {
		for _, f := range ie.Failed {
			fmt.Fprintf(out, "item %d failed: %v (a task error: %v)\n", f.Index, f.Err, errors.Is(f.Err, pool.ErrTask))
		}
	}

	// Raw bytes, when the caller already has JSON.
	rs, err := p.Map(ctx, [][]byte{[]byte("1.5"), []byte("123456789012345678901234567890")})
	if err != nil {
		return err
	}
	for _, r := range rs {
		fmt.Fprintf(out, "%s\n", r.Value)
	}
	return nil
}
