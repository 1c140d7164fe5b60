// Command spin is a bench-only plugin with a CPU-bound task: each item, an
// integer seed, costs a fixed number of multiply-adds (bench/internal/spin),
// set by the "iters" key of its config (default 2,000,000, about 2 ms).
// Tasks are idempotent. It lives under bench/, not plugins/: it exists to
// measure how pluginpool scales with workers (workload W4).
package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/pluginpool/pluginpool/bench/internal/spin"
	"github.com/pluginpool/pluginpool/sdk"
)

type config struct {
	Iters uint64 `json:"iters"`
}

func main() {
	cfg := config{Iters: 2_000_000}
	sdk.Serve(sdk.Plugin{
		Name:       "spin",
		Version:    "0.1.0",
		Idempotent: true,
		Init: func(_ context.Context, raw []byte) error {
			if err := json.Unmarshal(raw, &cfg); err != nil {
				return fmt.Errorf("spin config: %w", err)
			}
			return nil
		},
		Task: sdk.Func(func(_ context.Context, seed int64) (int64, error) {
			return int64(spin.Spin(uint64(seed), cfg.Iters)), nil
		}),
	})
}
