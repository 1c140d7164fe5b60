package config

import (
	"github.com/pluginpool/pluginpool/host/pool"
	"github.com/pluginpool/pluginpool/host/settings"
)

// The pool keys are settings.Pool: the [pool] table sets them for every
// plugin, a [plugins.NAME] table may override any of them for that
// plugin, and a pipeline stage written as {plugin = "NAME", ...} may
// override them again for that stage. A File holds their effective values
// as pool.Config fields (File.Pool, Plugin.Settings, Stage.Settings):
// defaults filled in, and 0 where pool.toml's 0 says what it means
// (workers: one per core), which is also what a zero pool.Config field
// means.

// DefaultSettings returns the settings used when pool.toml sets none: a
// pool.Config with only its settings set, to their defaults.
func DefaultSettings() pool.Config {
	var c pool.Config
	settings.Defaults(&c, settings.Pool)
	return c
}

// settingNames lists the pool keys in schema order.
var settingNames = settings.Names(settings.Pool)

func lookupSetting(name string) *settings.Key { return settings.Lookup(settings.Pool, name) }

// patch holds the keys one table sets, by key name; durations are in
// nanoseconds, sizes in bytes.
type patch map[string]int64

// apply overwrites the fields of c that pt sets.
func (pt patch) apply(c *pool.Config) {
	for i := range settings.Pool {
		if v, ok := pt[settings.Pool[i].Name]; ok {
			settings.Set(c, &settings.Pool[i], v)
		}
	}
}

// keys returns the key names pt sets, in schema order.
func (pt patch) keys() []string {
	var ks []string
	for _, k := range settings.Pool {
		if _, ok := pt[k.Name]; ok {
			ks = append(ks, k.Name)
		}
	}
	return ks
}

// setting checks one key's value and records it in pt.
func (p *parser) setting(pt patch, k *settings.Key, at loc, v any) {
	n, err := k.FromTOML(v)
	if err != nil {
		p.errorf(at, "%v", err)
		return
	}
	pt[k.Name] = n
}

// ParseSize parses a whole number of bytes with an optional unit, as
// max_item_bytes takes it: "512KiB", "64MiB", "1GiB", "100MB", "4096".
func ParseSize(s string) (int64, error) { return settings.ParseSize(s) }

// describe names a decoded TOML value's type, with the value when short.
func describe(v any) string { return settings.Describe(v) }
