package sdk_test

import (
	"context"
	"strings"

	"github.com/pluginpool/pluginpool/sdk"
)

// A plugin main hands a typed function to Serve. (Serve runs only under a
// host, so this example is compiled, not run.)
func ExampleServe() {
	upper := func(ctx context.Context, s string) (string, error) {
		sdk.Logger(ctx).Debug("upper-casing", "len", len(s))
		return strings.ToUpper(s), nil
	}
	sdk.Serve(sdk.Plugin{Name: "upper", Version: "1.0.0", Idempotent: true, Task: sdk.Func(upper)})
}

// Outside a task, Printf writes to standard output, so a task function can
// be run and tested as a plain function.
func ExamplePrintf() {
	printer := func(ctx context.Context, n int) error {
		sdk.Printf(ctx, "Number: %d", n)
		return nil
	}
	for n := 1; n <= 2; n++ {
		_ = printer(context.Background(), n)
	}
	// Output:
	// Number: 1
	// Number: 2
}
