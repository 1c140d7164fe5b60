// Package config owns pool.toml: its schema, loading it, and validating it
// with every problem reported at its line and key. It turns the file into
// pool.Config values (PoolConfig, StageConfig) and pipeline descriptions
// (Pipeline, DefaultPipeline); it starts nothing itself. The tunables
// ([pool] and per-plugin and per-stage overrides, [cluster]'s ack_wait and
// the like) are host/settings' table: config reads and checks them with
// it, and owns the rest (plugins, pipelines, where a cluster is).
//
// Load and Parse check the schema only: types, unknown keys, ranges,
// durations, sizes, names and references between tables. They never touch
// the plugin executables, so a config can be loaded before `make build`.
// Check adds the file-system checks `pluginpool validate` needs.
package config

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/pluginpool/pluginpool/host/pool"
)

// File is a loaded, valid pool.toml. Load and Parse return a new File each
// time; its methods do not modify it, so it may be shared between
// goroutines as long as callers do not modify it either.
type File struct {
	// Path is the config file's absolute path.
	Path string
	// Dir is the absolute directory relative paths in the file resolve
	// against: the directory the file is in.
	Dir string
	// Pool holds the [pool] table's settings, defaults filled in, in the
	// settings fields of a pool.Config (see DefaultSettings).
	Pool pool.Config
	// Plugins holds one entry per [plugins.NAME] table, by name.
	Plugins map[string]*Plugin
	// Pipelines holds one entry per [pipelines.NAME] table, by name.
	Pipelines map[string]*Pipeline
	// Cluster is the [cluster] table, or nil when the file has none.
	Cluster *Cluster

	name  string    // base name used in errors, e.g. "pool.toml"
	lines lineIndex // key -> line, for Check's errors
}

// Plugin is one [plugins.NAME] table.
type Plugin struct {
	// Name is the table's NAME: lower-case letters, digits, '_' and '-'.
	Name string
	// Path is the plugin executable's absolute path (path, required;
	// relative paths resolve against the config file's directory).
	Path string
	// Args are extra command-line arguments (args). Default none.
	Args []string
	// Env is extra environment (env, a table of strings). Default none.
	Env map[string]string
	// InheritEnv: the plugin inherits the host's whole environment
	// (inherit_env). Default true; when false it gets only PassEnv's
	// variables from it, plus Env.
	InheritEnv bool
	// PassEnv names the host's variables a plugin gets when InheritEnv is
	// false (pass_env, an array of names). Default none.
	PassEnv []string
	// TLS encrypts and mutually authenticates the connection to each
	// plugin process with go-plugin's AutoMTLS (tls). Default false.
	TLS bool
	// SHA256 is the executable's expected digest in lower-case hex
	// (sha256), or "" for no check.
	SHA256 string
	// Version, if set, pins the version the plugin must report (version)
	// on a cluster: workers whose plugin reports another do not serve this
	// host's jobs. Local pools do not check it.
	Version string
	// Settings are [pool]'s settings with this table's overrides
	// applied, in the settings fields of a pool.Config.
	Settings pool.Config
	// Config is the [plugins.NAME.config] table as a JSON object, passed to
	// the plugin's Init; "{}" when there is none.
	Config json.RawMessage
	// Line is the line of the [plugins.NAME] header (0 if unknown).
	Line int
}

// Format is how a pipeline reads its input.
type Format string

// Input formats.
const (
	// FormatJSONL reads one JSON value per line, passed on as is (default).
	FormatJSONL Format = "jsonl"
	// FormatLines reads each line as a plain string, without its newline.
	FormatLines Format = "lines"
)

// Pipeline is one [pipelines.NAME] table: items flow from Input through
// each stage's plugin in turn to Output.
type Pipeline struct {
	// Name is the table's NAME.
	Name string
	// Stages are the plugins to run, in order (stages, required, >= 1).
	Stages []Stage
	// Input is "-" for stdin or an absolute path (input). Default "-".
	Input string
	// InputFormat is how Input is read (input_format). Default FormatJSONL.
	InputFormat Format
	// Output is "-" for stdout or an absolute path (output). Default "-".
	Output string
	// Ordered keeps results in input order (ordered). Default true.
	Ordered bool
	// Default marks the pipeline `pluginpool run` runs when none is named
	// (default). At most one pipeline may set it.
	Default bool
	// Line is the line of the [pipelines.NAME] header (0 if unknown).
	Line int
}

// Stage is one entry of a pipeline's stages: either a plugin name, or an
// inline table {plugin = "NAME", workers = 1, ...} overriding pool keys for
// this stage only.
type Stage struct {
	// Plugin names a [plugins.NAME] table.
	Plugin string
	// Settings are the effective settings: [pool], then the plugin's table,
	// then the stage's own keys, in the settings fields of a pool.Config.
	Settings pool.Config
	// Overrides lists the pool keys the stage sets itself, in schema order;
	// empty for a plain name. A stage without overrides can share a pool
	// with other such stages of the same plugin.
	Overrides []string
	// Line is the line of the pipeline's stages key (0 if unknown).
	Line int
}

// Load reads and parses the config file at path. Relative paths in the file
// resolve against path's directory. A file that cannot be read returns the
// os error; a file with problems returns them all, joined, each a *Error
// matching ErrInvalid.
//
// A file over MaxFileBytes is refused unread, with an *Error.
func Load(path string) (*File, error) {
	return LoadContext(context.Background(), path)
}

// LoadContext is Load that gives up, returning ctx's error, when ctx is
// done: a SIGINT or SIGTERM arriving while a config loads ends the load,
// even one waiting on a FIFO. Parsing is linear in the file's size and
// the size is bounded: it notices within the TOML parser's run over at
// most MaxFileBytes (0.7-1.3 s measured on a 2-core machine busy with
// other work, 1.5 s for 1 MiB of inline tables in an array).
func LoadContext(ctx context.Context, path string) (*File, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer fh.Close()
	// A read blocked on a FIFO or a terminal (-c /dev/stdin) ends when
	// the file is closed.
	defer context.AfterFunc(ctx, func() { fh.Close() })()
	if st, err := fh.Stat(); err == nil && st.Mode().IsRegular() && st.Size() > MaxFileBytes {
		return nil, tooBig(filepath.Base(path), st.Size())
	}
	// Not a regular file (a FIFO, /dev/stdin): read no more than the
	// limit lets Parse see.
	data, err := io.ReadAll(io.LimitReader(fh, MaxFileBytes+1))
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return parseContext(ctx, path, data, filepath.Dir(path))
}

// tooBig reports a config file over MaxFileBytes, of size bytes (0 when
// the size is not known).
func tooBig(name string, size int64) *Error {
	what := "is larger than"
	if size > 0 {
		what = fmt.Sprintf("is %d bytes, larger than", size)
	}
	return &Error{File: name, Msg: fmt.Sprintf("%s the %d-byte (1 MiB) limit of a config file: is it the right file?", what, MaxFileBytes)}
}

// Parse parses data, the content of a config file called name, resolving
// relative paths against dir ("" = the working directory). Errors name the
// file by name's base name. It reads no files; see Load and Check.
//
// On problems it returns a nil File and every problem found, joined with
// errors.Join and sorted by line, each a *Error matching ErrInvalid.
func Parse(name string, data []byte, dir string) (*File, error) {
	return parseContext(context.Background(), name, data, dir)
}

func parseContext(ctx context.Context, name string, data []byte, dir string) (*File, error) {
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("config: resolving %q: %w", dir, err)
	}
	base := ""
	if name != "" {
		base = filepath.Base(name)
	}
	f := &File{
		Path:      filepath.Join(absDir, base),
		Dir:       absDir,
		Pool:      DefaultSettings(),
		Plugins:   map[string]*Plugin{},
		Pipelines: map[string]*Pipeline{},
		name:      base,
	}
	p := &parser{ctx: ctx, file: base, dir: absDir}
	ok := p.parse(f, data)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !ok {
		return nil, joinSorted(p.errs)
	}
	f.lines = p.lines
	return f, nil
}

// Plugin returns the [plugins.NAME] table called name, or an error matching
// ErrUnknownPlugin that suggests the closest configured name.
func (f *File) Plugin(name string) (*Plugin, error) {
	if pl, ok := f.Plugins[name]; ok {
		return pl, nil
	}
	return nil, fmt.Errorf("%w %q: %s has no [plugins.%s] table%s", ErrUnknownPlugin, name, f.displayName(), name, didYouMean(name, sortedKeys(f.Plugins)))
}

// Pipeline returns the [pipelines.NAME] table called name, or an error
// matching ErrUnknownPipeline that suggests the closest configured name.
func (f *File) Pipeline(name string) (*Pipeline, error) {
	if pp, ok := f.Pipelines[name]; ok {
		return pp, nil
	}
	msg := fmt.Sprintf("%s has no [pipelines.%s] table", f.displayName(), name)
	if s := didYouMean(name, sortedKeys(f.Pipelines)); s != "" {
		msg += s
	} else if len(f.Pipelines) > 0 {
		msg += "; it has " + strings.Join(sortedKeys(f.Pipelines), ", ")
	}
	return nil, fmt.Errorf("%w %q: %s", ErrUnknownPipeline, name, msg)
}

// DefaultPipeline returns the pipeline marked default = true, or the only
// pipeline if there is just one. Otherwise it returns an error matching
// ErrNoPipeline that lists the pipelines to choose from.
func (f *File) DefaultPipeline() (*Pipeline, error) {
	for _, pp := range f.Pipelines {
		if pp.Default {
			return pp, nil
		}
	}
	switch len(f.Pipelines) {
	case 0:
		return nil, fmt.Errorf("%w: %s has no [pipelines.NAME] table", ErrNoPipeline, f.displayName())
	case 1:
		for _, pp := range f.Pipelines {
			return pp, nil
		}
	}
	return nil, fmt.Errorf("%w: %s has %d pipelines (%s) and none has default = true: name one, or mark one default",
		ErrNoPipeline, f.displayName(), len(f.Pipelines), strings.Join(sortedKeys(f.Pipelines), ", "))
}

// PoolConfig returns the pool.Config for the plugin called name, with the
// plugin's settings ([pool] plus its own overrides). Logger and Stderr are
// left nil for the caller to set. The result shares no memory with f.
// An unknown name returns an error matching ErrUnknownPlugin.
func (f *File) PoolConfig(name string) (pool.Config, error) {
	pl, err := f.Plugin(name)
	if err != nil {
		return pool.Config{}, err
	}
	return pl.poolConfig(pl.Settings), nil
}

// StageConfig returns the pool.Config for stage i of pipeline pp: like
// PoolConfig for the stage's plugin, with the stage's overrides applied.
func (f *File) StageConfig(pp *Pipeline, i int) (pool.Config, error) {
	if pp == nil {
		return pool.Config{}, fmt.Errorf("config: StageConfig: nil pipeline")
	}
	if i < 0 || i >= len(pp.Stages) {
		return pool.Config{}, fmt.Errorf("config: pipeline %q has %d stages, no stage %d", pp.Name, len(pp.Stages), i)
	}
	st := pp.Stages[i]
	pl, err := f.Plugin(st.Plugin)
	if err != nil {
		return pool.Config{}, err
	}
	return pl.poolConfig(st.Settings), nil
}

// poolConfig is the plugin's pool.Config with settings s (a pool.Config
// whose other fields are unset). Env is sorted by key so equal configs
// compare equal.
func (pl *Plugin) poolConfig(s pool.Config) pool.Config {
	var env []string
	for _, k := range sortedKeys(pl.Env) {
		env = append(env, k+"="+pl.Env[k])
	}
	cfg := bytes.Clone([]byte(pl.Config))
	if len(cfg) == 0 {
		cfg = []byte("{}")
	}
	c := s
	c.Path = pl.Path
	c.Name = pl.Name
	c.Args = slices.Clone(pl.Args)
	c.Env = env
	c.SkipHostEnv = !pl.InheritEnv
	c.PassEnv = slices.Clone(pl.PassEnv)
	c.TLS = pl.TLS
	c.PluginConfig = cfg
	c.SHA256 = pl.SHA256
	return c
}

func (f *File) displayName() string {
	if f.name != "" {
		return f.name
	}
	return "the config"
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
