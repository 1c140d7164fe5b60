package pool

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/pluginpool/pluginpool/host/settings"
)

// Config describes one plugin's pool. Only Path is required; the zero value
// of every other field means its default. Start copies the Config: changing
// it afterwards has no effect. Each field's pool.toml key is in
// parentheses: the CLI builds a Config from a [plugins.NAME] table (and
// the [pool] table's defaults), field for field. The settings (Workers to
// StartTimeout) are pool.toml's pool keys: their defaults and bounds are
// settings.Pool's.
//
//	pool.Config{
//		Path:         "bin/plugins/printer",
//		Workers:      4,
//		PluginConfig: []byte(`{"format": "Number: %v"}`), // its Init's config
//		TaskTimeout:  30 * time.Second,
//	}
type Config struct {
	// Path is the plugin executable (path). Required. A relative path is
	// relative to the working directory.
	Path string
	// Name names the plugin in errors and logs (the NAME of
	// [plugins.NAME]). Default: the base name of Path.
	Name string
	// Args are extra command-line arguments for the plugin (args).
	Args []string
	// Env is extra environment for the plugin, as "KEY=value" (env), on
	// top of what it inherits from the host (see SkipHostEnv).
	Env []string
	// SkipHostEnv, if true, gives the plugin none of the host's
	// environment but the variables PassEnv names (inherit_env = false),
	// so secrets in it (cloud keys, tokens) stay in the host. Default
	// false: the plugin inherits all of it, as a multiprocessing worker
	// does.
	SkipHostEnv bool
	// PassEnv names the host's environment variables a plugin gets when
	// SkipHostEnv is set (pass_env), e.g. "PATH", "HOME", "LANG"; unset
	// ones are skipped. Ignored otherwise.
	PassEnv []string
	// PluginConfig is what the plugin's Init receives (sdk.Plugin.Init's
	// config argument), once per process start: a JSON object, such as
	// the [plugins.NAME.config] table, which the CLI passes encoded as
	// JSON. Build it with json.Marshal or write it as a literal. Default
	// "{}".
	PluginConfig []byte
	// SHA256, if set, is the hex digest the executable must have (sha256):
	// 64 hex digits, as sha256sum prints them (see FileSHA256). Start
	// checks it while copying the executable into the pool's private
	// directory, and every worker (restarts too) runs that copy, so a file
	// changed on disk afterwards never runs in this pool. A mismatch fails
	// Start with ErrChecksum.
	SHA256 string
	// TLS, if true, has go-plugin's AutoMTLS encrypt and mutually
	// authenticate each plugin connection with certificates made per
	// process (tls). Default false: the connection is a unix socket in a
	// directory only the host's user can enter, which TLS would guard
	// again, at the cost of start-up time (README, "Security model").
	// The plugin's SDK must support it (the Go SDK does).
	TLS bool

	// Workers is the number of plugin processes (workers). Default: one
	// per core (runtime.NumCPU).
	Workers int
	// ChunkSize fixes the number of items per batch (chunk_size). Default
	// 0: adaptive, sized from observed per-item time so a batch is a few
	// milliseconds of work, like Python's chunksize but learned.
	ChunkSize int
	// InFlight is how many batches each worker may have on the wire at once
	// (in_flight), so a worker never idles on a round trip. Default 2.
	InFlight int
	// MaxItemBytes is the largest item accepted, in bytes
	// (max_item_bytes); a larger one fails alone with ErrTooLarge. Default
	// 64 MiB.
	MaxItemBytes int
	// MaxResultBytes is the largest result a plugin may return for one
	// item (max_result_bytes). The plugin is told, and fails a larger
	// result as a task error; one that arrives anyway fails its item with
	// ErrTooLarge, and a response message over it (plus 1 MiB) breaks the
	// worker's stream. Default: MaxItemBytes.
	MaxResultBytes int
	// MaxMemory bounds each worker's memory, in bytes (max_memory),
	// enforced by the kernel: cgroup v2 memory.max on the worker's cgroup (its whole
	// process tree) where the host's cgroup delegates the memory
	// controller, else RLIMIT_DATA on each of its processes. A worker that
	// exceeds it dies, and its task is handled as after any crash, with a
	// *CrashError matching ErrMaxMemory. Linux only. Default 0: no limit.
	MaxMemory int64

	// MaxAttempts is how many times a task may be started (max_attempts).
	// Every run counts: one its worker died under, one that finished but
	// whose result died with its worker, one that asked to be retried
	// (sdk.Retry).
	// Tasks are run again after a crash only for plugins that declare
	// themselves idempotent; tasks a dead worker had not started run again
	// at no cost. Default 3.
	MaxAttempts int
	// TaskTimeout bounds each task, counted from when the worker starts it
	// (task_timeout). Default 0: no limit. On expiry the task's context
	// is cancelled; if it has not returned KillGrace later, the worker is
	// killed and replaced.
	TaskTimeout time.Duration
	// KillGrace is how long a timed-out task may take to return after its
	// context was cancelled (kill_grace). Default 1s.
	KillGrace time.Duration
	// MaxRestarts is how many worker restarts that look like a crash loop
	// RestartWindow may hold (max_restarts): restarts after a failed
	// start, or after a worker that died before completing a task. One
	// more marks the pool degraded: items it holds resolve as not run
	// (ErrNotRun, which matches ErrDegraded) and new calls fail fast.
	// Restarts after workers that completed tasks do not count. Default 10.
	MaxRestarts int
	// RestartWindow is the window MaxRestarts counts over
	// (restart_window). Default 1m.
	RestartWindow time.Duration
	// MaxTasksPerWorker replaces a worker after it has run this many tasks
	// (max_tasks_per_worker), between batches, losing nothing (Python's
	// maxtasksperchild).
	// Default 0: never.
	MaxTasksPerWorker int
	// StartTimeout bounds one worker's start: launch, handshake, Describe
	// and Init (start_timeout). Default 10s.
	StartTimeout time.Duration

	// Logger receives the host's and the plugins' log lines, the latter
	// tagged with plugin, slot and pid (the CLI's --log-level and
	// --log-json). Default: warnings and up to os.Stderr.
	Logger hclog.Logger
	// Stderr receives what plugins write to their own stdout and stderr
	// outside the SDK, line by line, each line whole and tagged with the
	// worker. Default os.Stderr.
	Stderr io.Writer
}

// Defaults: what a zero Config field means (settings.Pool).
const (
	DefaultInFlight      = settings.DefaultInFlight
	DefaultMaxItemBytes  = settings.DefaultMaxItemBytes
	DefaultMaxAttempts   = settings.DefaultMaxAttempts
	DefaultKillGrace     = settings.DefaultKillGrace
	DefaultMaxRestarts   = settings.DefaultMaxRestarts
	DefaultRestartWindow = settings.DefaultRestartWindow
	DefaultStartTimeout  = settings.DefaultStartTimeout
)

// Upper bounds of the Config fields that have one; Start rejects a value
// past them with ErrInvalidConfig, as config and the CLI do. See package
// settings for why each is where it is.
const (
	WorkersLimit       = settings.WorkersLimit
	ChunkSizeLimit     = settings.ChunkSizeLimit
	InFlightLimit      = settings.InFlightLimit
	MaxItemBytesLimit  = settings.MaxItemBytesLimit
	MaxAttemptsLimit   = settings.MaxAttemptsLimit
	MaxRestartsLimit   = settings.MaxRestartsLimit
	TaskTimeoutLimit   = settings.TaskTimeoutLimit
	KillGraceLimit     = settings.KillGraceLimit
	RestartWindowLimit = settings.RestartWindowLimit
	StartTimeoutLimit  = settings.StartTimeoutLimit
	MaxMemoryLimit     = settings.MaxMemoryLimit
)

// withDefaults returns a copy of c with defaults applied, or every problem
// found, each wrapped in ErrInvalidConfig. The settings' defaults and
// bounds are settings.Pool's.
func (c Config) withDefaults() (Config, error) {
	var errs []error
	bad := func(err error) {
		errs = append(errs, fmt.Errorf("%w: %v", ErrInvalidConfig, err))
	}
	if c.Path == "" {
		bad(errors.New("Path is required: the plugin executable to run"))
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
		bad(fmt.Errorf("SHA256 %q is not a 64-digit hex sha256 digest", c.SHA256))
	}
	for _, err := range settings.Apply(&c, settings.Pool) {
		bad(err)
	}
	// max_result_bytes' 0 means max_item_bytes.
	if c.MaxResultBytes == 0 {
		c.MaxResultBytes = c.MaxItemBytes
	}
	c.PassEnv = append([]string(nil), c.PassEnv...)
	switch {
	case c.MaxMemory > 0 && !groupsSupported:
		bad(errors.New("MaxMemory is supported on Linux only"))
	case c.MaxMemory > 0 && c.MaxMemory < MinMaxMemory:
		bad(fmt.Errorf("MaxMemory must be at least %s (a runtime needs that much to start), got %s", FormatSize(MinMaxMemory), FormatSize(c.MaxMemory)))
	}
	if c.Logger == nil {
		c.Logger = hclog.New(&hclog.LoggerOptions{Name: "pluginpool", Level: hclog.Warn, Output: os.Stderr})
	}
	if c.Stderr == nil {
		c.Stderr = os.Stderr
	}
	return c, errors.Join(errs...)
}

// MinMaxMemory is the smallest MaxMemory: below it neither the Go nor the
// Python runtime starts.
const MinMaxMemory = 16 << 20

// FormatSize writes a number of bytes the way pool.toml takes it: "512MiB",
// "1GiB", or plain bytes when no binary unit divides it.
func FormatSize(n int64) string { return settings.FormatSize(n) }

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
