package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/pluginpool/pluginpool/host/pool"
)

// Settings are the pool keys: the [pool] table sets them for every plugin,
// a [plugins.NAME] table may override any of them for that plugin, and a
// pipeline stage written as {plugin = "NAME", ...} may override them again
// for that stage. Each field's TOML key is in parentheses; see pool.Config
// for what each one does.
//
// Unlike pool.Config, a zero here is never "use the default": the values
// are the effective ones, with defaults filled in (DefaultSettings).
type Settings struct {
	Workers           int           // (workers) plugin processes; 0 = one per core. Default 0.
	ChunkSize         int           // (chunk_size) items per batch; 0 = adaptive. Default 0.
	InFlight          int           // (in_flight) batches on the wire per worker, >= 1. Default 2.
	MaxItemBytes      int           // (max_item_bytes) largest item, in bytes, >= 1. Default 64 MiB.
	MaxAttempts       int           // (max_attempts) runs of a task across worker crashes, >= 1. Default 3.
	TaskTimeout       time.Duration // (task_timeout) per task; 0 = none. Default 0.
	KillGrace         time.Duration // (kill_grace) wait after cancelling a timed-out task, > 0. Default 1s.
	MaxRestarts       int           // (max_restarts) restarts allowed per restart_window, >= 1. Default 10.
	RestartWindow     time.Duration // (restart_window) > 0. Default 1m.
	MaxTasksPerWorker int           // (max_tasks_per_worker) recycle a worker after this many tasks; 0 = never. Default 0.
	StartTimeout      time.Duration // (start_timeout) one worker's start-up, > 0. Default 10s.
	MaxResultBytes    int           // (max_result_bytes) largest result, in bytes; 0 = max_item_bytes. Default 0.
	MaxMemory         int64         // (max_memory) per worker, in bytes, enforced by the kernel; 0 = no limit. Default 0.
}

// DefaultSettings returns the settings used when pool.toml sets none: the
// same defaults as pool.Config.
func DefaultSettings() Settings {
	return Settings{
		InFlight:      pool.DefaultInFlight,
		MaxItemBytes:  pool.DefaultMaxItemBytes,
		MaxAttempts:   pool.DefaultMaxAttempts,
		KillGrace:     pool.DefaultKillGrace,
		MaxRestarts:   pool.DefaultMaxRestarts,
		RestartWindow: pool.DefaultRestartWindow,
		StartTimeout:  pool.DefaultStartTimeout,
	}
}

type valueKind int

const (
	kindCount    valueKind = iota // a TOML integer
	kindSize                      // a TOML integer (bytes) or a size string
	kindDuration                  // a Go duration string
)

// settingKey describes one pool key. Minimums of 1 where pool.Config would
// read 0 as "default" are deliberate: max_restarts = 0 must not silently
// become 10.
type settingKey struct {
	name  string
	kind  valueKind
	min   int64 // smallest allowed value; nanoseconds for durations
	max   int64 // largest allowed value; 0 = no limit beyond int
	field func(*Settings) any
}

// The upper bounds are pool's (pool.WorkersLimit and the rest; see there
// why each): a value past one is a mistake to report at its line, not a
// bigger job. max_tasks_per_worker has none: a large value only means
// "rarely".
var settingKeys = []settingKey{
	{"workers", kindCount, 0, pool.WorkersLimit, func(s *Settings) any { return &s.Workers }},
	{"chunk_size", kindCount, 0, pool.ChunkSizeLimit, func(s *Settings) any { return &s.ChunkSize }},
	{"in_flight", kindCount, 1, pool.InFlightLimit, func(s *Settings) any { return &s.InFlight }},
	{"max_item_bytes", kindSize, 1, pool.MaxItemBytesLimit, func(s *Settings) any { return &s.MaxItemBytes }},
	{"max_attempts", kindCount, 1, pool.MaxAttemptsLimit, func(s *Settings) any { return &s.MaxAttempts }},
	{"task_timeout", kindDuration, 0, int64(pool.TaskTimeoutLimit), func(s *Settings) any { return &s.TaskTimeout }},
	{"kill_grace", kindDuration, 1, int64(pool.KillGraceLimit), func(s *Settings) any { return &s.KillGrace }},
	{"max_restarts", kindCount, 1, pool.MaxRestartsLimit, func(s *Settings) any { return &s.MaxRestarts }},
	{"restart_window", kindDuration, 1, int64(pool.RestartWindowLimit), func(s *Settings) any { return &s.RestartWindow }},
	{"max_tasks_per_worker", kindCount, 0, 0, func(s *Settings) any { return &s.MaxTasksPerWorker }},
	{"start_timeout", kindDuration, 1, int64(pool.StartTimeoutLimit), func(s *Settings) any { return &s.StartTimeout }},
	{"max_result_bytes", kindSize, 0, pool.MaxItemBytesLimit, func(s *Settings) any { return &s.MaxResultBytes }},
	{"max_memory", kindSize, 0, pool.MaxMemoryLimit, func(s *Settings) any { return &s.MaxMemory }},
}

// settingNames lists the pool keys in schema order.
var settingNames = func() []string {
	names := make([]string, len(settingKeys))
	for i, k := range settingKeys {
		names[i] = k.name
	}
	return names
}()

func lookupSetting(name string) *settingKey {
	for i := range settingKeys {
		if settingKeys[i].name == name {
			return &settingKeys[i]
		}
	}
	return nil
}

// patch holds the pool keys one table sets, by key name; durations are in
// nanoseconds.
type patch map[string]int64

// apply overwrites the fields of s that pt sets.
func (pt patch) apply(s *Settings) {
	for _, k := range settingKeys {
		v, ok := pt[k.name]
		if !ok {
			continue
		}
		switch f := k.field(s).(type) {
		case *int:
			*f = int(v)
		case *int64:
			*f = v
		case *time.Duration:
			*f = time.Duration(v)
		}
	}
}

// keys returns the key names pt sets, in schema order.
func (pt patch) keys() []string {
	var ks []string
	for _, k := range settingKeys {
		if _, ok := pt[k.name]; ok {
			ks = append(ks, k.name)
		}
	}
	return ks
}

// setting checks one pool key's value and records it in pt.
func (p *parser) setting(pt patch, k *settingKey, at loc, v any) {
	var n int64
	switch k.kind {
	case kindCount:
		i, ok := v.(int64)
		if !ok {
			p.errorf(at, "expected an integer, got %s", describe(v))
			return
		}
		n = i
	case kindSize:
		switch x := v.(type) {
		case int64:
			n = x
		case string:
			s, err := parseSize(x)
			if err != nil {
				p.errorf(at, "%q is not a size: write a number of bytes (65536) or a number with a unit: \"512KiB\", \"64MiB\", \"1GiB\", \"100MB\"", x)
				return
			}
			n = s
		default:
			p.errorf(at, "expected an integer number of bytes or a size string such as \"64MiB\", got %s", describe(v))
			return
		}
	case kindDuration:
		s, ok := v.(string)
		if !ok {
			p.errorf(at, "expected a duration string such as \"200ms\" or \"1m30s\", got %s", describe(v))
			return
		}
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil {
			p.errorf(at, "%q is not a duration: write Go syntax such as \"200ms\", \"1m30s\" or \"2h\"", s)
			return
		}
		n = int64(d)
	}
	show := func(n int64) string {
		if k.kind == kindDuration {
			return time.Duration(n).String()
		}
		return strconv.FormatInt(n, 10)
	}
	switch {
	case n < k.min && k.min == 1 && k.kind == kindDuration:
		p.errorf(at, "must be > 0, got %s", show(n))
		return
	case n < k.min:
		p.errorf(at, "must be >= %s, got %s", show(k.min), show(n))
		return
	case k.max > 0 && n > k.max:
		p.errorf(at, "must be at most %s, got %s", show(k.max), show(n))
		return
	case n > math.MaxInt:
		p.errorf(at, "%s is too large", show(n))
		return
	}
	pt[k.name] = n
}

// sizeUnits maps a lower-cased unit to its multiplier: SI units are powers
// of 1000, IEC units ("KiB") powers of 1024.
var sizeUnits = map[string]int64{
	"":    1,
	"b":   1,
	"kb":  1000,
	"mb":  1000 * 1000,
	"gb":  1000 * 1000 * 1000,
	"tb":  1000 * 1000 * 1000 * 1000,
	"kib": 1 << 10,
	"mib": 1 << 20,
	"gib": 1 << 30,
	"tib": 1 << 40,
}

// parseSize parses a whole number of bytes with an optional unit, such as
// "512KiB", "64MiB", "1GiB", "100MB" or "4096". Units are case-insensitive
// and may be separated from the number by spaces.
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("size %q does not start with a number", s)
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("size %q: %w", s, err)
	}
	mult, ok := sizeUnits[strings.ToLower(strings.TrimSpace(t[i:]))]
	if !ok {
		return 0, fmt.Errorf("size %q: unknown unit", s)
	}
	if n > math.MaxInt64/mult {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return n * mult, nil
}
