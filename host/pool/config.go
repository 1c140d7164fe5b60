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
// it afterwards has no effect. The settings (Workers to StartTimeout) are
// pool.toml's pool keys: their defaults and bounds are settings.Pool's.
type Config struct {
	// Path is the plugin executable. Required.
	Path string
	// Name names the plugin in errors and logs. Default: the base name of
	// Path.
	Name string
	// Args are extra command-line arguments for the plugin.
	Args []string
	// Env is extra environment for the plugin, as "KEY=value". The plugin
	// also inherits the host's environment.
	Env []string
	// PluginConfig is passed to the plugin's Init as a JSON object.
	// Default "{}".
	PluginConfig []byte
	// SHA256, if set, is the hex digest the executable must have. It is
	// checked before every start; a mismatch fails that start.
	SHA256 string

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
	if c.Logger == nil {
		c.Logger = hclog.New(&hclog.LoggerOptions{Name: "pluginpool", Level: hclog.Warn, Output: os.Stderr})
	}
	if c.Stderr == nil {
		c.Stderr = os.Stderr
	}
	return c, errors.Join(errs...)
}

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
