package pool

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Config describes one plugin's pool. Only Path is required; the zero value
// of every other field means its default. Start copies the Config: changing
// it afterwards has no effect.
type Config struct {
	// Path is the plugin executable. Required.
	Path string
	// Name names the plugin in errors and logs. Default: the base name of
	// Path.
	Name string
	// Args are extra command-line arguments for the plugin.
	Args []string
	// Env is extra environment for the plugin, as "KEY=value", on top of
	// what it inherits from the host (see SkipHostEnv).
	Env []string
	// SkipHostEnv, if true, gives the plugin none of the host's
	// environment but the variables PassEnv names, so secrets in it (cloud
	// keys, tokens) stay in the host. Default false: the plugin inherits
	// all of it, as a multiprocessing worker does.
	SkipHostEnv bool
	// PassEnv names the host's environment variables a plugin gets when
	// SkipHostEnv is set, e.g. "PATH", "HOME", "LANG"; unset ones are
	// skipped. Ignored otherwise.
	PassEnv []string
	// PluginConfig is passed to the plugin's Init as a JSON object.
	// Default "{}".
	PluginConfig []byte
	// SHA256, if set, is the hex digest the executable must have. Start
	// checks it while copying the executable into the pool's private
	// directory, and every worker (restarts too) runs that copy, so a file
	// changed on disk afterwards never runs in this pool. A mismatch fails
	// Start with ErrChecksum.
	SHA256 string
	// TLS, if true, has go-plugin's AutoMTLS encrypt and mutually
	// authenticate each plugin connection with certificates made per
	// process. Default false: the connection is a unix socket in a
	// directory only the host's user can enter, which TLS would guard
	// again, at the cost of start-up time (README, "Security model").
	// The plugin's SDK must support it (the Go SDK does).
	TLS bool

	// Workers is the number of plugin processes. Default: one per core
	// (runtime.NumCPU).
	Workers int
	// ChunkSize fixes the number of items per batch. Default 0: adaptive,
	// sized from observed per-item time so a batch is a few milliseconds of
	// work, like Python's chunksize but learned.
	ChunkSize int
	// InFlight is how many batches each worker may have on the wire at once,
	// so a worker never idles on a round trip. Default 2.
	InFlight int
	// MaxItemBytes is the largest item accepted; a larger one fails alone
	// with ErrTooLarge. Default 64 MiB.
	MaxItemBytes int
	// MaxResultBytes is the largest result a plugin may return for one
	// item. The plugin is told, and fails a larger result as a task error;
	// one that arrives anyway fails its item with ErrTooLarge, and a
	// response message over it (plus 1 MiB) breaks the worker's stream.
	// Default: MaxItemBytes.
	MaxResultBytes int
	// MaxMemory bounds each worker's memory, in bytes, enforced by the
	// kernel: cgroup v2 memory.max on the worker's cgroup (its whole
	// process tree) where the host's cgroup delegates the memory
	// controller, else RLIMIT_DATA on each of its processes. A worker that
	// exceeds it dies, and its task is handled as after any crash, with a
	// *CrashError matching ErrMaxMemory. Linux only. Default 0: no limit.
	MaxMemory int64

	// MaxAttempts is how many times a task may be started. Every run
	// counts: one its worker died under, one that finished but whose result
	// died with its worker, one that asked to be retried (sdk.Retry).
	// Tasks are run again after a crash only for plugins that declare
	// themselves idempotent; tasks a dead worker had not started run again
	// at no cost. Default 3.
	MaxAttempts int
	// TaskTimeout bounds each task, counted from when the worker starts it.
	// Default 0: no limit. On expiry the task's context is cancelled; if it
	// has not returned KillGrace later, the worker is killed and replaced.
	TaskTimeout time.Duration
	// KillGrace is how long a timed-out task may take to return after its
	// context was cancelled. Default 1s.
	KillGrace time.Duration
	// MaxRestarts is how many worker restarts that look like a crash loop
	// RestartWindow may hold: restarts after a failed start, or after a
	// worker that died before completing a task. One more marks the pool
	// degraded: items it holds resolve as not run (ErrNotRun, which matches
	// ErrDegraded) and new calls fail fast. Restarts after workers that
	// completed tasks do not count. Default 10.
	MaxRestarts int
	// RestartWindow is the window MaxRestarts counts over. Default 1m.
	RestartWindow time.Duration
	// MaxTasksPerWorker replaces a worker after it has run this many tasks,
	// between batches, losing nothing (Python's maxtasksperchild).
	// Default 0: never.
	MaxTasksPerWorker int
	// StartTimeout bounds one worker's start: launch, handshake, Describe
	// and Init. Default 10s.
	StartTimeout time.Duration

	// Logger receives the host's and the plugins' log lines, the latter
	// tagged with plugin, slot and pid. Default: warnings and up to
	// os.Stderr.
	Logger hclog.Logger
	// Stderr receives what plugins write to their own stdout and stderr
	// outside the SDK, line by line, each line whole and tagged with the
	// worker. Default os.Stderr.
	Stderr io.Writer
}

// Defaults.
const (
	DefaultInFlight      = 2
	DefaultMaxItemBytes  = 64 << 20
	DefaultMaxAttempts   = 3
	DefaultKillGrace     = time.Second
	DefaultMaxRestarts   = 10
	DefaultRestartWindow = time.Minute
	DefaultStartTimeout  = 10 * time.Second
)

// withDefaults returns a copy of c with defaults applied, or every problem
// found, each wrapped in ErrInvalidConfig.
func (c Config) withDefaults() (Config, error) {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...)))
	}
	if c.Path == "" {
		bad("Path is required: the plugin executable to run")
	}
	if c.Name == "" {
		c.Name = filepath.Base(c.Path)
	}
	c.Args = append([]string(nil), c.Args...)
	c.Env = append([]string(nil), c.Env...)
	if len(c.PluginConfig) == 0 {
		c.PluginConfig = []byte("{}")
	} else {
		c.PluginConfig = append([]byte(nil), c.PluginConfig...)
	}
	c.SHA256 = strings.ToLower(strings.TrimSpace(c.SHA256))
	if c.SHA256 != "" && !ValidSHA256(c.SHA256) {
		bad("SHA256 %q is not a 64-digit hex sha256 digest", c.SHA256)
	}
	def := func(v *int, d int, name string) {
		switch {
		case *v < 0:
			bad("%s must be >= 0, got %d", name, *v)
		case *v == 0:
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration, name string) {
		switch {
		case *v < 0:
			bad("%s must be >= 0, got %s", name, *v)
		case *v == 0:
			*v = d
		}
	}
	def(&c.Workers, min(runtime.NumCPU(), WorkersLimit), "Workers")
	def(&c.ChunkSize, 0, "ChunkSize")
	def(&c.InFlight, DefaultInFlight, "InFlight")
	def(&c.MaxItemBytes, DefaultMaxItemBytes, "MaxItemBytes")
	def(&c.MaxAttempts, DefaultMaxAttempts, "MaxAttempts")
	def(&c.MaxRestarts, DefaultMaxRestarts, "MaxRestarts")
	def(&c.MaxTasksPerWorker, 0, "MaxTasksPerWorker")
	defDur(&c.TaskTimeout, 0, "TaskTimeout")
	defDur(&c.KillGrace, DefaultKillGrace, "KillGrace")
	defDur(&c.RestartWindow, DefaultRestartWindow, "RestartWindow")
	defDur(&c.StartTimeout, DefaultStartTimeout, "StartTimeout")
	def(&c.MaxResultBytes, c.MaxItemBytes, "MaxResultBytes")
	if c.MaxItemBytes > MaxItemBytesLimit {
		bad("MaxItemBytes must be at most %d, got %d", MaxItemBytesLimit, c.MaxItemBytes)
	}
	atMost(bad, "Workers", c.Workers, WorkersLimit)
	atMost(bad, "ChunkSize", c.ChunkSize, ChunkSizeLimit)
	atMost(bad, "InFlight", c.InFlight, InFlightLimit)
	atMost(bad, "MaxAttempts", c.MaxAttempts, MaxAttemptsLimit)
	atMost(bad, "MaxRestarts", c.MaxRestarts, MaxRestartsLimit)
	atMost(bad, "TaskTimeout", c.TaskTimeout, TaskTimeoutLimit)
	atMost(bad, "KillGrace", c.KillGrace, KillGraceLimit)
	atMost(bad, "RestartWindow", c.RestartWindow, RestartWindowLimit)
	atMost(bad, "StartTimeout", c.StartTimeout, StartTimeoutLimit)
	atMost(bad, "MaxResultBytes", c.MaxResultBytes, MaxItemBytesLimit)
	atMost(bad, "MaxMemory", c.MaxMemory, MaxMemoryLimit)
	c.PassEnv = append([]string(nil), c.PassEnv...)
	switch {
	case c.MaxMemory < 0:
		bad("MaxMemory must be >= 0, got %d", c.MaxMemory)
	case c.MaxMemory > 0 && !groupsSupported:
		bad("MaxMemory is supported on Linux only")
	case c.MaxMemory > 0 && c.MaxMemory < MinMaxMemory:
		bad("MaxMemory must be at least %s (a runtime needs that much to start), got %s", FormatSize(MinMaxMemory), FormatSize(c.MaxMemory))
	}
	if c.Logger == nil {
		c.Logger = hclog.New(&hclog.LoggerOptions{Name: "pluginpool", Level: hclog.Warn, Output: os.Stderr})
	}
	if c.Stderr == nil {
		c.Stderr = os.Stderr
	}
	return c, errors.Join(errs...)
}

// atMost reports field name's value v through bad when it is past limit.
func atMost[T int | int64 | time.Duration](bad func(string, ...any), name string, v, limit T) {
	if v > limit {
		bad("%s must be at most %v, got %v", name, limit, v)
	}
}

// MinMaxMemory is the smallest MaxMemory: below it neither the Go nor the
// Python runtime starts.
const MinMaxMemory = 16 << 20

// FormatSize writes a number of bytes the way pool.toml takes it: "512MiB",
// "1GiB", or plain bytes when no binary unit divides it.
func FormatSize(n int64) string {
	for _, u := range []struct {
		unit  string
		shift uint
	}{{"TiB", 40}, {"GiB", 30}, {"MiB", 20}, {"KiB", 10}} {
		if n != 0 && n%(1<<u.shift) == 0 {
			return fmt.Sprintf("%d%s", n>>u.shift, u.unit)
		}
	}
	return fmt.Sprintf("%dB", n)
}

// MaxItemBytesLimit is the largest MaxItemBytes: gRPC's ceiling on one
// message, less room for the rest of the batch.
const MaxItemBytesLimit = 1<<31 - 1 - 1<<20

// Upper bounds of the other Config fields that have one; Start rejects a
// value past them with ErrInvalidConfig, as config and the CLI do. A value
// that large is a typo or a misunderstanding, not a bigger job, and it
// would fail badly before anything useful happened: --chunk-size
// 1000000000000 died allocating one batch's item boundaries ("fatal error:
// out of memory"), and workers = 100000 starts 100000 processes.
// MaxTasksPerWorker has no bound: a large value only means "rarely".
const (
	// WorkersLimit bounds Workers. A worker is a process (~10 MB, a few
	// ms to start); 1024 is four times the cores of the largest machines,
	// room for tasks that mostly wait.
	WorkersLimit = 1024
	// ChunkSizeLimit bounds ChunkSize, items per batch. A batch's item
	// boundaries are allocated when it is opened; the adaptive size never
	// goes past 16384, and 1Mi trivial items are already ~100 ms of work.
	ChunkSizeLimit = 1 << 20
	// InFlightLimit bounds InFlight. Two batches per worker hide the round
	// trip; more only put more items at the mercy of one crash.
	InFlightLimit = 64
	// MaxAttemptsLimit bounds MaxAttempts: the runs of each item are
	// counted in a byte, and a task that failed 100 times will not
	// succeed the 101st.
	MaxAttemptsLimit = 100
	// MaxRestartsLimit bounds MaxRestarts: the pool keeps one record per
	// restart in the window. It is high enough to mean "never degrade"
	// (TestChaos kills workers on purpose, thousands of times).
	MaxRestartsLimit = 1 << 20
	// TaskTimeoutLimit bounds TaskTimeout: a week. The watchdog adds
	// KillGrace to it, which must not overflow.
	TaskTimeoutLimit = 7 * 24 * time.Hour
	// KillGraceLimit bounds KillGrace: how long a cancelled task may take
	// to stop.
	KillGraceLimit = time.Hour
	// RestartWindowLimit bounds RestartWindow: a day.
	RestartWindowLimit = 24 * time.Hour
	// StartTimeoutLimit bounds StartTimeout: a plugin that needs more than
	// an hour to start is broken.
	StartTimeoutLimit = time.Hour
	// MaxMemoryLimit bounds MaxMemory: 1 TiB per worker.
	MaxMemoryLimit = 1 << 40
)

// ValidSHA256 reports whether s is a sha256 digest as Config.SHA256 takes
// it: 64 lower-case hex digits.
func ValidSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, r := range s {
		if !strings.ContainsRune("0123456789abcdef", r) {
			return false
		}
	}
	return true
}

// FileSHA256 returns the sha256 of the file at path as Config.SHA256 takes
// it: 64 lower-case hex digits.
func FileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
