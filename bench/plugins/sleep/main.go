// Command sleep is a bench-only plugin whose task waits: each item sleeps
// for the "ms" milliseconds of its config (default 10), then comes back
// doubled. Tasks are idempotent. It measures dispatch where the CPUs are
// not the limit: how a job's throughput scales with worker processes
// (workload W9), even on a machine with fewer cores than processes.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/pluginpool/pluginpool/sdk"
)

type config struct {
	Ms float64 `json:"ms"`
}

func main() {
	cfg := config{Ms: 10}
	sdk.Serve(sdk.Plugin{
		Name:       "sleep",
		Version:    "0.1.0",
		Idempotent: true,
		Init: func(_ context.Context, raw []byte) error {
			if err := json.Unmarshal(raw, &cfg); err != nil {
				return fmt.Errorf("sleep config: %w", err)
			}
			return nil
		},
		Task: sdk.Func(func(ctx context.Context, n int64) (int64, error) {
			select {
			case <-time.After(time.Duration(cfg.Ms * float64(time.Millisecond))):
				return 2 * n, nil
			case <-ctx.Done():
				return 0, ctx.Err()
			}
		}),
	})
}
