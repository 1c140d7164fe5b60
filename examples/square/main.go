// Command square is the README's plugin example: a whole plugin in 15 lines.
package main

import (
	"context"

	"github.com/pluginpool/pluginpool/sdk"
)

func square(ctx context.Context, x float64) (float64, error) {
	return x * x, nil
}

func main() {
	sdk.Serve(sdk.Plugin{Name: "square", Version: "1.0.0", Idempotent: true, Task: sdk.Func(square)})
}
