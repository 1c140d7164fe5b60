package settings_test

import (
	"errors"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pluginpool/pluginpool/host/cluster"
	"github.com/pluginpool/pluginpool/host/pool"
	"github.com/pluginpool/pluginpool/host/settings"
)

// Every key names a field of the right type in the structs it configures,
// and every setting-like field of pool.Config is a key: adding a field
// without its row, or a row without its field, fails here.
func TestTablesMatchTheStructs(t *testing.T) {
	durationType := reflect.TypeFor[time.Duration]()
	check := func(table []settings.Key, structs ...any) {
		for _, k := range table {
			found := false
			for _, s := range structs {
				f, ok := reflect.TypeOf(s).Elem().FieldByName(k.Field)
				if !ok {
					continue
				}
				found = true
				switch {
				case k.Kind == settings.Duration && f.Type != durationType,
					k.Kind != settings.Duration && f.Type.Kind() != reflect.Int && f.Type.Kind() != reflect.Int64:
					t.Errorf("%s: %T.%s is a %s, not a %v", k.Name, s, k.Field, f.Type, k.Kind)
				}
			}
			if !found {
				t.Errorf("%s: no field %s in %T", k.Name, k.Field, structs)
			}
		}
	}
	check(settings.Pool, &pool.Config{})
	check(settings.Cluster, &cluster.Config{}, &cluster.NATS{})

	cfg := reflect.TypeFor[pool.Config]()
	for i := range cfg.NumField() {
		f := cfg.Field(i)
		if f.Type != durationType && f.Type.Kind() != reflect.Int && f.Type.Kind() != reflect.Int64 {
			continue
		}
		found := false
		for _, k := range settings.Pool {
			found = found || k.Field == f.Name
		}
		if !found {
			t.Errorf("pool.Config.%s has no row in settings.Pool: pool.toml cannot set it", f.Name)
		}
	}
}

// A Config's zero field means the default; a key pool.toml may set to 0
// must mean the same by it, and say what (Zero). Defaults lie within
// their bounds; flags have help.
func TestTableRules(t *testing.T) {
	for _, table := range [][]settings.Key{settings.Pool, settings.Cluster} {
		for _, k := range table {
			if k.Min <= 0 && (k.Default != 0 || k.Zero == "") {
				t.Errorf("%s: pool.toml takes 0, so 0 must be its default and Zero say what it means (Default %d, Zero %q)", k.Name, k.Default, k.Zero)
			}
			if k.Default != 0 && (k.Default < k.Min || k.Max > 0 && k.Default > k.Max) {
				t.Errorf("%s: default %d outside %d..%d", k.Name, k.Default, k.Min, k.Max)
			}
			if k.Flag != "" && k.Usage == "" {
				t.Errorf("%s: flag --%s without help", k.Name, k.Flag)
			}
			if k.Kind == settings.Duration && k.Example == "" {
				t.Errorf("%s: a duration without an example for its errors", k.Name)
			}
			if k.Doc == "" {
				t.Errorf("%s: no doc", k.Name)
			}
		}
	}
}

// The shipped pool.toml shows every key with its default.
func TestShippedConfigDocumentsEveryKey(t *testing.T) {
	b, err := os.ReadFile("../../pool.toml")
	if err != nil {
		t.Fatal(err)
	}
	for _, table := range [][]settings.Key{settings.Pool, settings.Cluster} {
		for _, k := range table {
			if !regexp.MustCompile(`(?m)^# ` + k.Name + ` = `).Match(b) {
				t.Errorf("pool.toml does not document %s", k.Name)
			}
		}
	}
}

// Apply fills in defaults and names each problem by its field.
func TestApply(t *testing.T) {
	var c pool.Config
	if errs := settings.Apply(&c, settings.Pool); len(errs) > 0 {
		t.Fatal(errs)
	}
	if c.InFlight != settings.DefaultInFlight || c.MaxItemBytes != settings.DefaultMaxItemBytes || c.KillGrace != settings.DefaultKillGrace ||
		c.Workers < 1 || c.TaskTimeout != 0 || c.ChunkSize != 0 {
		t.Errorf("defaults: %+v", c)
	}
	bad := pool.Config{Workers: -1, InFlight: 65, TaskTimeout: settings.TaskTimeoutLimit + 1}
	got := errors.Join(settings.Apply(&bad, settings.Pool)...).Error()
	for _, want := range []string{"Workers must be >= 0, got -1", "InFlight must be at most 64, got 65", "TaskTimeout must be at most 168h0m0s, got 168h0m0.000000001s"} {
		if !strings.Contains(got, want) {
			t.Errorf("%q does not say %q", got, want)
		}
	}
	n := cluster.NATS{Replicas: 9}
	if got := errors.Join(settings.Apply(&n, settings.Cluster)...); got == nil || got.Error() != "Replicas must be 1 to 5, got 9" {
		t.Errorf("replicas 9: %v", got)
	}
	cc := cluster.Config{AckWait: time.Millisecond}
	if got := errors.Join(settings.Apply(&cc, settings.Pool, settings.Cluster)...); got == nil || got.Error() != "AckWait must be between 100ms and 1h0m0s, got 1ms" {
		t.Errorf("ack_wait 1ms: %v", got)
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"4096", 4096, true},
		{"512KiB", 512 << 10, true},
		{"64MiB", 64 << 20, true},
		{"1GiB", 1 << 30, true},
		{"100MB", 100_000_000, true},
		{"10 kb", 10_000, true},
		{"7B", 7, true},
		{"", 0, false},
		{"MiB", 0, false},
		{"-1MiB", 0, false},
		{"1.5GiB", 0, false},
		{"5 megs", 0, false},
		{"99999999999TiB", 0, false},
	}
	for _, tt := range tests {
		got, err := settings.ParseSize(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}
