package config

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pluginpool/pluginpool/host/pool"
)

const dir = "/srv/pp"

func parse(t *testing.T, src string) *File {
	t.Helper()
	f, err := Parse("pool.toml", []byte(src), dir)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return f
}

// errLines returns each problem's message, in order.
func errLines(err error) []string {
	if err == nil {
		return nil
	}
	return strings.Split(err.Error(), "\n")
}

func TestDefaults(t *testing.T) {
	f := parse(t, `
[plugins.double]
path = "bin/plugins/double"

[pipelines.demo]
stages = ["double"]
`)
	want := pool.Config{
		Workers: 0, ChunkSize: 0, InFlight: 2, MaxItemBytes: 64 << 20, MaxAttempts: 3,
		TaskTimeout: 0, KillGrace: time.Second, MaxRestarts: 10, RestartWindow: time.Minute,
		MaxTasksPerWorker: 0, StartTimeout: 10 * time.Second,
	}
	if !reflect.DeepEqual(f.Pool, want) {
		t.Errorf("Pool = %+v, want %+v", f.Pool, want)
	}
	pl := f.Plugins["double"]
	if !reflect.DeepEqual(pl.Settings, want) || string(pl.Config) != "{}" || pl.Args != nil || pl.Env != nil || pl.SHA256 != "" {
		t.Errorf("plugin = %+v", pl)
	}
	pp := f.Pipelines["demo"]
	if pp.Input != "-" || pp.Output != "-" || pp.InputFormat != FormatJSONL || !pp.Ordered || pp.Default {
		t.Errorf("pipeline = %+v", pp)
	}
	if len(pp.Stages) != 1 || pp.Stages[0].Plugin != "double" || !reflect.DeepEqual(pp.Stages[0].Settings, want) || pp.Stages[0].Overrides != nil {
		t.Errorf("stages = %+v", pp.Stages)
	}
	if f.Path != "/srv/pp/pool.toml" || f.Dir != "/srv/pp" {
		t.Errorf("Path, Dir = %q, %q", f.Path, f.Dir)
	}
}

func TestOverrides(t *testing.T) {
	f := parse(t, `
[pool]
workers = 4
chunk_size = 100
max_item_bytes = "1MiB"
task_timeout = "1m30s"

[plugins.a]
path = "a"
workers = 2
max_item_bytes = 4096
kill_grace = "200ms"

[plugins.b]
path = "b"

[pipelines.p]
stages = ["a", {plugin = "b", workers = 1, chunk_size = 0}, {plugin = "a", task_timeout = "5s"}]
`)
	if f.Pool.Workers != 4 || f.Pool.ChunkSize != 100 || f.Pool.MaxItemBytes != 1<<20 || f.Pool.TaskTimeout != 90*time.Second {
		t.Errorf("Pool = %+v", f.Pool)
	}
	a := f.Plugins["a"].Settings
	if a.Workers != 2 || a.ChunkSize != 100 || a.MaxItemBytes != 4096 || a.KillGrace != 200*time.Millisecond || a.TaskTimeout != 90*time.Second || a.InFlight != 2 {
		t.Errorf("a = %+v", a)
	}
	if b := f.Plugins["b"].Settings; !reflect.DeepEqual(b, f.Pool) {
		t.Errorf("b = %+v, want the pool's %+v", b, f.Pool)
	}
	st := f.Pipelines["p"].Stages
	if !reflect.DeepEqual(st[0].Settings, a) || st[0].Overrides != nil {
		t.Errorf("stage 0 = %+v", st[0])
	}
	if st[1].Settings.Workers != 1 || st[1].Settings.ChunkSize != 0 || st[1].Settings.TaskTimeout != 90*time.Second ||
		!reflect.DeepEqual(st[1].Overrides, []string{"workers", "chunk_size"}) {
		t.Errorf("stage 1 = %+v", st[1])
	}
	if st[2].Settings.Workers != 2 || st[2].Settings.TaskTimeout != 5*time.Second || st[2].Settings.KillGrace != 200*time.Millisecond {
		t.Errorf("stage 2 = %+v", st[2])
	}
}

func TestPaths(t *testing.T) {
	f := parse(t, `
[plugins.rel]
path = "bin/plugins/double"
[plugins.up]
path = "../other/plugin"
[plugins.abs]
path = "/opt/plugins/x"

[pipelines.p]
stages = ["rel"]
input = "examples/numbers.jsonl"
output = "out/result.jsonl"
[pipelines.q]
stages = ["abs"]
input = "-"
output = "/tmp/x.jsonl"
`)
	for name, want := range map[string]string{
		"rel": "/srv/pp/bin/plugins/double",
		"up":  "/srv/other/plugin",
		"abs": "/opt/plugins/x",
	} {
		if got := f.Plugins[name].Path; got != want {
			t.Errorf("plugins.%s.path = %q, want %q", name, got, want)
		}
	}
	p, q := f.Pipelines["p"], f.Pipelines["q"]
	if p.Input != "/srv/pp/examples/numbers.jsonl" || p.Output != "/srv/pp/out/result.jsonl" {
		t.Errorf("p = %q -> %q", p.Input, p.Output)
	}
	if q.Input != "-" || q.Output != "/tmp/x.jsonl" {
		t.Errorf("q = %q -> %q", q.Input, q.Output)
	}
}

func TestLoadRelativeDir(t *testing.T) {
	tmp := t.TempDir()
	src := "[plugins.x]\npath = \"bin/x\"\n[pipelines.p]\nstages = [\"x\"]\ninput = \"in.jsonl\"\n"
	if err := os.WriteFile(filepath.Join(tmp, "my.toml"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Load(filepath.Join(tmp, "my.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if f.Plugins["x"].Path != filepath.Join(tmp, "bin/x") || f.Pipelines["p"].Input != filepath.Join(tmp, "in.jsonl") {
		t.Errorf("paths not resolved against %s: %+v %+v", tmp, f.Plugins["x"], f.Pipelines["p"])
	}
	if _, err := Load(filepath.Join(tmp, "missing.toml")); !errors.Is(err, fs.ErrNotExist) || errors.Is(err, ErrInvalid) {
		t.Errorf("missing file: %v", err)
	}
}

// TestErrors pins each problem's exact report: file, line, key, message.
func TestErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"unknown key with suggestion", `
[plugins.double]
path = "d"

workers = 1
wokers = 2
`, []string{`pool.toml:6: plugins.double.wokers: unknown key (did you mean "workers"?)`}},
		{"unknown key without suggestion", `
[pool]
colour = "blue"
`, []string{`pool.toml:3: pool.colour: unknown key`}},
		{"unknown top-level table", `
[plugin.double]
path = "d"
`, []string{`pool.toml:2: plugin: unknown key (did you mean "plugins"?)`}},
		{"key in the wrong table", `
[pool]
path = "x"
[pipelines.p]
stages = ["x"]
workers = 2
[plugins.x]
path = "x"
`, []string{
			`pool.toml:3: pool.path: unknown key: path belongs in a [plugins.NAME] table`,
			`pool.toml:6: pipelines.p.workers: unknown key: pool keys are set per plugin, or per stage: stages = [{plugin = "NAME", workers = ...}]`,
		}},
		{"wrong type", `
[pool]
workers = "4"
ordered = 1

[plugins.x]
path = 5
args = ["a", 2]
env = {A = "1", B = 2}
`, []string{
			`pool.toml:3: pool.workers: expected an integer, got string "4"`,
			`pool.toml:4: pool.ordered: unknown key: ordered belongs in a [pipelines.NAME] table`,
			`pool.toml:7: plugins.x.path: expected a string, got integer 5`,
			`pool.toml:8: plugins.x.args[1]: expected a string, got integer 2`,
			`pool.toml:9: plugins.x.env.B: expected a string, got integer 2 (quote it)`,
		}},
		{"wrong type for a table", `
pool = 3
[plugins]
y = "bin/y"
[plugins.x]
path = "x"
config = "fmt"
`, []string{
			`pool.toml:2: pool: expected a table, got integer 3`,
			`pool.toml:4: plugins.y: expected a table such as [plugins.y] with path = "bin/plugins/y", got string "bin/y"`,
			`pool.toml:7: plugins.x.config: expected a table, got string "fmt"`,
		}},
		{"bad duration", `
[pool]
task_timeout = "5 minutes"
kill_grace = 5
start_timeout = "0s"
restart_window = "-1m"
`, []string{
			`pool.toml:3: pool.task_timeout: "5 minutes" is not a duration: write Go syntax such as "200ms", "1m30s" or "2h"`,
			`pool.toml:4: pool.kill_grace: expected a duration string such as "200ms" or "1m30s", got integer 5`,
			`pool.toml:5: pool.start_timeout: must be > 0, got 0s`,
			`pool.toml:6: pool.restart_window: must be > 0, got -1m0s`,
		}},
		{"bad size", `
[pool]
max_item_bytes = "64 megs"
[plugins.x]
path = "x"
max_item_bytes = 0
[plugins.y]
path = "y"
max_item_bytes = "4GiB"
[plugins.z]
path = "z"
max_item_bytes = 1.5
`, []string{
			`pool.toml:3: pool.max_item_bytes: "64 megs" is not a size: write a number of bytes (65536) or a number with a unit: "512KiB", "64MiB", "1GiB", "100MB"`,
			`pool.toml:6: plugins.x.max_item_bytes: must be >= 1, got 0`,
			`pool.toml:9: plugins.y.max_item_bytes: must be at most 2146435071, got 4294967296`,
			`pool.toml:12: plugins.z.max_item_bytes: expected an integer number of bytes or a size string such as "64MiB", got float 1.5`,
		}},
		{"ranges", `
[plugins.double]
path = "d"
workers = -1
chunk_size = -5
in_flight = 0
max_attempts = 0
max_restarts = 0
max_tasks_per_worker = -1
task_timeout = "-1s"
`, []string{
			`pool.toml:4: plugins.double.workers: must be >= 0, got -1`,
			`pool.toml:5: plugins.double.chunk_size: must be >= 0, got -5`,
			`pool.toml:6: plugins.double.in_flight: must be >= 1, got 0`,
			`pool.toml:7: plugins.double.max_attempts: must be >= 1, got 0`,
			`pool.toml:8: plugins.double.max_restarts: must be >= 1, got 0`,
			`pool.toml:9: plugins.double.max_tasks_per_worker: must be >= 0, got -1`,
			`pool.toml:10: plugins.double.task_timeout: must be >= 0s, got -1s`,
		}},
		{"plugin table problems", `
[plugins.Bad_Name]
path = "x"

[plugins.nopath]
args = []

[plugins.empty]
path = ""
sha256 = "abc"
`, []string{
			`pool.toml:2: plugins.Bad_Name: bad plugin name "Bad_Name": use lower-case letters, digits, '_' and '-', starting with a letter or digit`,
			`pool.toml:5: plugins.nopath: path is required: the plugin executable, e.g. path = "bin/plugins/nopath"`,
			`pool.toml:9: plugins.empty.path: must not be empty: the plugin executable, e.g. "bin/plugins/empty"`,
			`pool.toml:10: plugins.empty.sha256: "abc" is not a sha256 digest: expected 64 hex digits (sha256sum prints one)`,
		}},
		// Each stage of a multi-line array is reported on its own line.
		{"unknown stage plugin", `
[plugins.double]
path = "d"

[pipelines.demo]
stages = [
  "double",
  "dubble",
  {plugin = "printer", workers = 1},
  {workers = 1},
  {plugin = "double", wrkers = 1},
  7,
]
`, []string{
			`pool.toml:8: pipelines.demo.stages[1]: unknown plugin "dubble": add a [plugins.dubble] table (did you mean "double"?)`,
			`pool.toml:9: pipelines.demo.stages[2]: unknown plugin "printer": add a [plugins.printer] table`,
			`pool.toml:10: pipelines.demo.stages[3]: plugin is required: {plugin = "NAME", ...}`,
			`pool.toml:11: pipelines.demo.stages[4].wrkers: unknown key (did you mean "workers"?)`,
			`pool.toml:12: pipelines.demo.stages[5]: expected a plugin name or a table {plugin = "NAME", workers = 1}, got integer 7`,
		}},
		{"pipeline problems", `
[pipelines.a]
stages = []
input_format = "json"
input = ""
[pipelines.b]
input = "x"
[pipelines.c]
stages = "double"
ordered = "yes"
`, []string{
			`pool.toml:3: pipelines.a.stages: must name at least one plugin, e.g. stages = ["double", "printer"]`,
			`pool.toml:4: pipelines.a.input_format: unknown format "json": use "jsonl" (one JSON value per line) or "lines" (each line a string) (did you mean "jsonl"?)`,
			`pool.toml:5: pipelines.a.input: must not be empty: write "-" for stdin, or a file name`,
			`pool.toml:6: pipelines.b: stages is required: the plugins to run, in order, e.g. stages = ["double", "printer"]`,
			`pool.toml:9: pipelines.c.stages: expected an array of plugin names, got string "double"`,
			`pool.toml:10: pipelines.c.ordered: expected true or false, got string "yes"`,
		}},
		{"two defaults", `
[plugins.x]
path = "x"
[pipelines.one]
stages = ["x"]
default = true
[pipelines.two]
stages = ["x"]
default = true
[pipelines.three]
stages = ["x"]
default = true
`, []string{
			`pool.toml:9: pipelines.two.default: pipeline "one" (line 4) is already the default; at most one pipeline may set default = true`,
			`pool.toml:12: pipelines.three.default: pipeline "one" (line 4) is already the default; at most one pipeline may set default = true`,
		}},
		{"syntax error", `
[pool]
workers = 4
chunk_size = = 3
`, []string{`pool.toml:4:14: TOML syntax error: expected value but found '=' instead`}},
		{"duplicate key", `
[plugins.x]
path = "a"
path = "b"
`, []string{`pool.toml:4:12: TOML syntax error: Key 'plugins.x.path' has already been defined.`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse("configs/pool.toml", []byte(tt.src), dir)
			if f != nil {
				t.Errorf("Parse returned a File along with errors")
			}
			if got := errLines(err); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			// Every problem is a *Error matching ErrInvalid.
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("errors.Is(err, ErrInvalid) = false")
			}
			for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
				var ce *Error
				if !errors.As(e, &ce) || !errors.Is(e, ErrInvalid) || ce.File != "pool.toml" || ce.Line == 0 {
					t.Errorf("%v: not a *Error with file and line matching ErrInvalid", e)
				}
			}
		})
	}
}

// TestLineNumbers pins the lines of tables, implicit tables, dotted keys,
// multi-line values and array tables, which rely on how toml positions
// errors (see indexLines).
func TestLineNumbers(t *testing.T) {
	src := `# comment
[plugins.a.config]
x = 1
[plugins.a]
path = """
multi"""
env.HOME = "/h"
wrkers = 1
[[pipelines.p.stages]]
plugin = "a"
[[pipelines.p.stages]]
plugin = "a"
bad = 1
`
	_, err := Parse("pool.toml", []byte(src), dir)
	want := []string{
		`pool.toml:8: plugins.a.wrkers: unknown key (did you mean "workers"?)`,
		`pool.toml:11: pipelines.p.stages[1].bad: unknown key`,
	}
	if got := errLines(err); !reflect.DeepEqual(got, want) {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	f := parse(t, strings.Replace(strings.Replace(src, "wrkers", "workers", 1), "bad = 1", "", 1))
	if l := f.Plugins["a"].Line; l != 4 {
		t.Errorf("plugins.a line = %d, want 4", l)
	}
	if l := f.lines.get([]string{"plugins", "a", "env", "HOME"}); l != 7 {
		t.Errorf("env.HOME line = %d, want 7", l)
	}
	if l := f.lines.get([]string{"plugins", "a", "config", "x"}); l != 3 {
		t.Errorf("config.x line = %d, want 3", l)
	}
	if l := f.lines.get([]string{"plugins"}); l != 2 {
		t.Errorf("implicit [plugins] line = %d, want 2 (its first child)", l)
	}
	// An array of tables is where it starts; each of its tables (a stage
	// here) on its own header's line.
	if f.Pipelines["p"].Line != 9 || len(f.Pipelines["p"].Stages) != 2 {
		t.Errorf("pipeline = %+v", f.Pipelines["p"])
	}
	if l0, l1 := f.lines.elem([]string{"pipelines", "p", "stages"}, 0), f.lines.elem([]string{"pipelines", "p", "stages"}, 1); l0 != 9 || l1 != 11 {
		t.Errorf("stage lines %d, %d; want 9, 11", l0, l1)
	}
}

func TestPoolConfig(t *testing.T) {
	f := parse(t, `
[pool]
workers = 3
task_timeout = "2s"

[plugins.printer]
path = "bin/plugins/printer"
args = ["-v", "x"]
env = {B = "2", A = "1=one"}
sha256 = "ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789"
chunk_size = 16
in_flight = 4
max_item_bytes = "100MB"
max_attempts = 5
kill_grace = "3s"
max_restarts = 7
restart_window = "30s"
max_tasks_per_worker = 1000
start_timeout = "1m"

[plugins.printer.config]
format = "Number: %v"
nested = {list = [1, 2.5, "x"], on = true}
dates = [2024-01-02, 10:30:00, 2024-01-02T10:30:00, 2024-01-02T10:30:00+02:00]

[pipelines.p]
stages = ["printer", {plugin = "printer", workers = 1, task_timeout = "0s"}]
`)
	got, err := f.PoolConfig("printer")
	if err != nil {
		t.Fatal(err)
	}
	want := pool.Config{
		Path:              "/srv/pp/bin/plugins/printer",
		Name:              "printer",
		Args:              []string{"-v", "x"},
		Env:               []string{"A=1=one", "B=2"},
		PluginConfig:      []byte(`{"dates":["2024-01-02","10:30:00","2024-01-02T10:30:00","2024-01-02T10:30:00+02:00"],"format":"Number: %v","nested":{"list":[1,2.5,"x"],"on":true}}`),
		SHA256:            "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789",
		Workers:           3,
		ChunkSize:         16,
		InFlight:          4,
		MaxItemBytes:      100_000_000,
		MaxAttempts:       5,
		TaskTimeout:       2 * time.Second,
		KillGrace:         3 * time.Second,
		MaxRestarts:       7,
		RestartWindow:     30 * time.Second,
		MaxTasksPerWorker: 1000,
		StartTimeout:      time.Minute,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("PoolConfig:\n got %+v\nwant %+v", got, want)
	}
	if !json.Valid(got.PluginConfig) {
		t.Errorf("PluginConfig is not JSON: %s", got.PluginConfig)
	}

	// The result shares no memory with the File.
	got.Args[0], got.PluginConfig[0] = "changed", '!'
	if again, _ := f.PoolConfig("printer"); !reflect.DeepEqual(again, want) {
		t.Errorf("PoolConfig result aliases the File")
	}

	pp := f.Pipelines["p"]
	s0, err := f.StageConfig(pp, 0)
	if err != nil || !reflect.DeepEqual(s0, want) {
		t.Errorf("StageConfig(0) = %+v, %v", s0, err)
	}
	s1, err := f.StageConfig(pp, 1)
	want.Workers, want.TaskTimeout = 1, 0
	if err != nil || !reflect.DeepEqual(s1, want) {
		t.Errorf("StageConfig(1) = %+v, %v", s1, err)
	}
	if _, err := f.StageConfig(pp, 2); err == nil {
		t.Errorf("StageConfig(2) succeeded")
	}

	_, err = f.PoolConfig("printr")
	if !errors.Is(err, ErrUnknownPlugin) || !strings.Contains(err.Error(), `did you mean "printer"?`) {
		t.Errorf("PoolConfig(printr) = %v", err)
	}
}

func TestDefaultPipeline(t *testing.T) {
	const plugin = "[plugins.x]\npath = \"x\"\n"
	tests := []struct {
		name, src, want string
		err             error
	}{
		{"none", plugin, "", ErrNoPipeline},
		{"only one", plugin + "[pipelines.a]\nstages = [\"x\"]\n", "a", nil},
		{"marked", plugin + "[pipelines.a]\nstages = [\"x\"]\n[pipelines.b]\nstages = [\"x\"]\ndefault = true\n", "b", nil},
		{"several unmarked", plugin + "[pipelines.a]\nstages = [\"x\"]\n[pipelines.b]\nstages = [\"x\"]\n", "", ErrNoPipeline},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pp, err := parse(t, tt.src).DefaultPipeline()
			if !errors.Is(err, tt.err) || (err == nil && pp.Name != tt.want) {
				t.Errorf("DefaultPipeline() = %v, %v; want %q, %v", pp, err, tt.want, tt.err)
			}
		})
	}
	f := parse(t, plugin+"[pipelines.demo]\nstages = [\"x\"]\n")
	if _, err := f.Pipeline("dmeo"); !errors.Is(err, ErrUnknownPipeline) || !strings.Contains(err.Error(), `did you mean "demo"?`) {
		t.Errorf("Pipeline(dmeo) = %v", err)
	}
}

func TestShippedConfig(t *testing.T) {
	f, err := Load("../../pool.toml")
	if err != nil {
		t.Fatalf("the shipped pool.toml does not load:\n%v", err)
	}
	root, _ := filepath.Abs("../..")
	pp, err := f.DefaultPipeline()
	if err != nil || pp.Name != "demo" {
		t.Fatalf("DefaultPipeline = %v, %v", pp, err)
	}
	if got := []string{pp.Stages[0].Plugin, pp.Stages[1].Plugin}; !reflect.DeepEqual(got, []string{"double", "printer"}) {
		t.Errorf("demo stages = %v", got)
	}
	if pp.Input != filepath.Join(root, "examples/numbers.jsonl") || pp.Output != "-" {
		t.Errorf("demo input/output = %q, %q", pp.Input, pp.Output)
	}
	if !reflect.DeepEqual(f.Pool, DefaultSettings()) {
		t.Errorf("shipped [pool] differs from the defaults: %+v", f.Pool)
	}
	for name, want := range map[string]string{"printer": `{"format":"Number: %v"}`, "child": `{"format":"%v"}`, "double": `{}`} {
		cfg, err := f.PoolConfig(name)
		if err != nil || string(cfg.PluginConfig) != want {
			t.Errorf("PoolConfig(%s) = %s, %v; want config %s", name, cfg.PluginConfig, err, want)
		}
	}
	if got := f.Plugins["child"].Path; got != filepath.Join(root, "bin/plugins/printer") {
		t.Errorf("child path = %q", got)
	}
	// The example input exists; plugin executables may not be built yet.
	for _, e := range f.Check() {
		var ce *Error
		if !errors.As(e, &ce) || !strings.HasSuffix(ce.Key, ".path") {
			t.Errorf("Check: %v", e)
		}
	}
}

func TestCheck(t *testing.T) {
	tmp := t.TempDir()
	exe := filepath.Join(tmp, "exe")
	noexec := filepath.Join(tmp, "noexec")
	// A .py plugin is run by an interpreter: it need not be executable.
	for _, p := range []string{exe, noexec, filepath.Join(tmp, "plugin.py")} {
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(exe, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tmp, "in.jsonl"), []byte("1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	src := `
[plugins.ok]
path = "exe"
sha256 = "` + "ab0b0e4ae4f5f3e7e06b4b4ff8bc0a29d2ba4d3d8c4d6a3d2e6b1d5b8c9e0f1a" + `"
[plugins.missing]
path = "nope"
[plugins.noexec]
path = "noexec"
[plugins.dir]
path = "."
[pipelines.good]
stages = ["ok"]
input = "in.jsonl"
output = "out.jsonl"
[pipelines.bad]
stages = ["ok"]
input = "absent.jsonl"
output = "no/such/dir/out.jsonl"
[plugins.py]
path = "plugin.py"
`
	f, err := Parse("pool.toml", []byte(src), tmp)
	if err != nil {
		t.Fatal(err)
	}
	errs := f.Check()
	var got []string
	for _, e := range errs {
		if !errors.Is(e, ErrInvalid) {
			t.Errorf("%v does not match ErrInvalid", e)
		}
		got = append(got, strings.ReplaceAll(e.Error(), tmp, "TMP"))
	}
	want := []string{
		`pool.toml:4: plugins.ok.sha256: TMP/exe has sha256 a8076d3d28d21e02012b20eaf7dbf75409a6277134439025f282e368e3305abf, not the configured one: rebuild or re-verify the plugin, then update sha256`,
		`pool.toml:6: plugins.missing.path: plugin executable TMP/nope does not exist: build it, or fix path`,
		`pool.toml:8: plugins.noexec.path: TMP/noexec is not executable: chmod +x it`,
		`pool.toml:10: plugins.dir.path: TMP is a directory, not a plugin executable`,
		`pool.toml:17: pipelines.bad.input: input file TMP/absent.jsonl does not exist`,
		`pool.toml:18: pipelines.bad.output: output directory TMP/no/such/dir does not exist`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Check:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(errs) > 0 && !errors.Is(errs[0], pool.ErrChecksum) {
		t.Errorf("checksum mismatch does not match pool.ErrChecksum")
	}
	if len(errs) > 1 && !errors.Is(errs[1], fs.ErrNotExist) {
		t.Errorf("missing executable does not match fs.ErrNotExist")
	}
}

func TestClosest(t *testing.T) {
	keys := append([]string(nil), pluginKeys...)
	for in, want := range map[string]string{
		"wokers":        "workers",
		"Workers":       "workers",
		"chunksize":     "chunk_size",
		"max_item_size": "max_item_bytes",
		"paht":          "path",
		"timeout":       "",
		"x":             "",
	} {
		if got := closest(in, keys); got != want {
			t.Errorf("closest(%q) = %q, want %q", in, got, want)
		}
	}
}
