package config

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

// The isolation keys: the environment policy and tls per plugin,
// max_memory and max_result_bytes as pool keys (in [pool], a plugin, a
// stage), each reaching pool.Config.
func TestIsolationKeys(t *testing.T) {
	f := parse(t, `
[pool]
max_memory = "512MiB"

[plugins.open]
path = "p"

[plugins.closed]
path = "p"
inherit_env = false
pass_env = ["PATH", "HOME"]
tls = true
max_result_bytes = "1MiB"
max_memory = 1073741824

[pipelines.p]
stages = [{plugin = "closed", max_memory = "2GiB"}]
`)
	open, err := f.PoolConfig("open")
	if err != nil {
		t.Fatal(err)
	}
	if open.SkipHostEnv || open.PassEnv != nil || open.TLS || open.MaxMemory != 512<<20 || open.MaxResultBytes != 0 {
		t.Errorf("defaults: SkipHostEnv %v, PassEnv %q, TLS %v, MaxMemory %d, MaxResultBytes %d; want false, none, false, 512MiB from [pool], 0",
			open.SkipHostEnv, open.PassEnv, open.TLS, open.MaxMemory, open.MaxResultBytes)
	}
	closed, err := f.PoolConfig("closed")
	if err != nil {
		t.Fatal(err)
	}
	if !closed.SkipHostEnv || !slices.Equal(closed.PassEnv, []string{"PATH", "HOME"}) || !closed.TLS ||
		closed.MaxMemory != 1<<30 || closed.MaxResultBytes != 1<<20 {
		t.Errorf("closed: %+v", closed)
	}
	stage, err := f.StageConfig(f.Pipelines["p"], 0)
	if err != nil || stage.MaxMemory != 2<<30 {
		t.Errorf("stage override: MaxMemory %d, %v; want 2GiB", stage.MaxMemory, err)
	}
}

func TestIsolationKeyErrors(t *testing.T) {
	_, err := Parse("pool.toml", []byte(`
[pool]
max_memory = "lots"
max_result_bytes = -1

[plugins.a]
path = "p"
pass_env = ["PATH"]

[plugins.b]
path = "p"
inherit_env = "no"
pass_env = ["A=B", 3]
tls = 1
`), dir)
	want := []string{
		`pool.toml:3: pool.max_memory: "lots" is not a size: write a number of bytes (65536) or a number with a unit: "512KiB", "64MiB", "1GiB", "100MB"`,
		`pool.toml:4: pool.max_result_bytes: must be >= 0, got -1`,
		`pool.toml:8: plugins.a.pass_env: has no effect: the plugin inherits the whole environment unless inherit_env = false`,
		`pool.toml:12: plugins.b.inherit_env: expected true or false, got string "no"`,
		`pool.toml:13: plugins.b.pass_env: "A=B" is not an environment variable name`,
		`pool.toml:13: plugins.b.pass_env[1]: expected a string, got integer 3`,
		`pool.toml:14: plugins.b.tls: expected true or false, got integer 1`,
	}
	if got := errLines(err); !reflect.DeepEqual(got, want) {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
