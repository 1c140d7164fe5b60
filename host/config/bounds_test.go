package config

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// Every pool key past its bound is an error at its line (issue 8, case
// 8: workers = 100000 was accepted, chunk_size 10^12 died of out of
// memory).
func TestSettingBounds(t *testing.T) {
	_, err := Parse("pool.toml", []byte(`[pool]
workers = 100000
chunk_size = 1000000000000
in_flight = 65
max_item_bytes = "3GiB"
max_attempts = 101
task_timeout = "169h"
kill_grace = "2h"
max_restarts = 1048577
restart_window = "25h"
max_tasks_per_worker = 1000000000000
start_timeout = "61m"

[plugins.d]
path = "d"
workers = 1025

[pipelines.p]
stages = [{plugin = "d", chunk_size = 1048577}]
`), dir)
	want := []string{
		`pool.toml:2: pool.workers: must be at most 1024, got 100000`,
		`pool.toml:3: pool.chunk_size: must be at most 1048576, got 1000000000000`,
		`pool.toml:4: pool.in_flight: must be at most 64, got 65`,
		`pool.toml:5: pool.max_item_bytes: must be at most 2146435071, got 3221225472`,
		`pool.toml:6: pool.max_attempts: must be at most 100, got 101`,
		`pool.toml:7: pool.task_timeout: must be at most 168h0m0s, got 169h0m0s`,
		`pool.toml:8: pool.kill_grace: must be at most 1h0m0s, got 2h0m0s`,
		`pool.toml:9: pool.max_restarts: must be at most 1048576, got 1048577`,
		`pool.toml:10: pool.restart_window: must be at most 24h0m0s, got 25h0m0s`,
		`pool.toml:12: pool.start_timeout: must be at most 1h0m0s, got 1h1m0s`,
		`pool.toml:16: plugins.d.workers: must be at most 1024, got 1025`,
		`pool.toml:19: pipelines.p.stages[0].chunk_size: must be at most 1048576, got 1048577`,
	}
	if got := errLines(err); !reflect.DeepEqual(got, want) {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// A file over MaxFileBytes is refused unread, with its size; a cancelled
// load stops with ctx's error.
func TestLoadLimits(t *testing.T) {
	big := filepath.Join(t.TempDir(), "pool.toml")
	if err := os.WriteFile(big, []byte(strings.Repeat("#", 10<<20)), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(big)
	if want := "pool.toml: is 10485760 bytes, larger than the 1048576-byte (1 MiB) limit of a config file: is it the right file?"; err == nil || err.Error() != want || !errors.Is(err, ErrInvalid) {
		t.Errorf("Load(10 MiB) = %v, want %q", err, want)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := LoadContext(ctx, big); !errors.Is(err, context.Canceled) {
		t.Errorf("LoadContext(cancelled) = %v, want context.Canceled", err)
	}
}
