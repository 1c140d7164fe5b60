package testkit

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/pluginpool/pluginpool/host/pool"
	"github.com/pluginpool/pluginpool/sdk"
)

// Tasks and helpers the fixture plugins of several packages share.

// BadBytes is what BadBytesTask fails with and prints: invalid UTF-8, a
// NUL, an escape sequence and a rune cut short.
const BadBytes = "bad \xff\x00\x1b[31mred\xc3"

// BadBytesTask fails with BadBytes on "fail", prints it on "print", and
// echoes anything else.
func BadBytesTask(ctx context.Context, in []byte) ([]byte, error) {
	switch string(in) {
	case `"fail"`:
		return nil, errors.New(BadBytes)
	case `"print"`:
		sdk.Printf(ctx, "%s", BadBytes)
		return []byte("1"), nil
	}
	return append([]byte(nil), in...), nil
}

// PrintTask prints "Number: n", two more lines when n%10 == 0, and for -1
// writes a line to the process's own stdout and stderr (stray output).
func PrintTask(ctx context.Context, n int) error {
	sdk.Printf(ctx, "Number: %d", n)
	if n%10 == 0 {
		sdk.Printf(ctx, "line one\nline two")
	}
	if n == -1 {
		fmt.Println("stray stdout")
		fmt.Fprintln(os.Stderr, "stray stderr")
	}
	return nil
}

// Pids returns p's worker pids by slot (0 for a slot that is restarting).
func Pids(p *pool.Pool) []int {
	var out []int
	for _, w := range p.Stats().Workers {
		out = append(out, w.Pid)
	}
	return out
}
