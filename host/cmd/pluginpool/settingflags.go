package main

import (
	"fmt"
	"strconv"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/pflag"

	"github.com/pluginpool/pluginpool/host/settings"
)

// settingFlags are the flags that override settings: each is a key of
// package settings with a Flag, registered from its row (name, short form,
// type, help), checked against its bounds and applied to a Config's field.
// A command registers the keys it takes; adding a flag to a setting is
// setting its row's Flag. A nil *settingFlags has no flags.
type settingFlags struct {
	fs   *pflag.FlagSet
	keys []*settings.Key
	vals map[string]*settingValue
}

// addSettingFlags registers the flags of table's keys named in names on
// fs. usage, if set, replaces a key's help for this command.
func addSettingFlags(fs *pflag.FlagSet, table []settings.Key, names []string, usage map[string]string) *settingFlags {
	sf := &settingFlags{fs: fs, vals: map[string]*settingValue{}}
	for _, name := range names {
		k := settings.Lookup(table, name)
		if k == nil || k.Flag == "" {
			panic("pluginpool: no flag for setting " + name) // a bug in this file's callers
		}
		v := &settingValue{k: k}
		help := k.Usage
		if u, ok := usage[name]; ok {
			help = u
		}
		fs.VarP(v, k.Flag, k.Short, help)
		sf.keys = append(sf.keys, k)
		sf.vals[k.Name] = v
	}
	return sf
}

// warnIgnored logs each flag given that has no effect where s runs the
// job ("-w/--workers has no effect on a cluster: ...").
func (sf *settingFlags) warnIgnored(s site, log hclog.Logger) {
	if sf == nil {
		return
	}
	for _, k := range sf.keys {
		if !sf.fs.Changed(k.Flag) {
			continue
		}
		if why := s.ignored(k.Name); why != "" {
			name := "--" + k.Flag
			if k.Short != "" {
				name = "-" + k.Short + "/" + name
			}
			log.Warn(name + " " + why)
		}
	}
}

// apply checks the flags given and sets their fields in dst, a pointer to
// a Config. A flag gives a value: 0, which pool.toml may use to say
// "default", is not one.
func (sf *settingFlags) apply(dst any) error {
	if sf == nil {
		return nil
	}
	for _, k := range sf.keys {
		if !sf.fs.Changed(k.Flag) {
			continue
		}
		n := sf.vals[k.Name].n
		if lo := max(k.Min, 1); n < lo || k.Max > 0 && n > k.Max {
			return usageError{fmt.Errorf("--%s must be between %s and %s, got %s", k.Flag, show(k, lo), show(k, k.Max), show(k, n))}
		}
		settings.Set(dst, k, n)
	}
	return nil
}

// show writes a value of k's type as its flag takes it.
func show(k *settings.Key, n int64) string {
	if k.Kind == settings.Duration {
		return time.Duration(n).String()
	}
	return strconv.FormatInt(n, 10)
}

// settingValue is a setting's flag: an integer, a size ("64MiB") or a
// duration ("1m30s"), by the key's kind.
type settingValue struct {
	k *settings.Key
	n int64
}

func (v *settingValue) String() string { return show(v.k, v.n) }

func (v *settingValue) Type() string {
	switch v.k.Kind {
	case settings.Size:
		return "size"
	case settings.Duration:
		return "duration"
	}
	return "int"
}

func (v *settingValue) Set(s string) error {
	var err error
	switch v.k.Kind {
	case settings.Size:
		v.n, err = settings.ParseSize(s)
	case settings.Duration:
		var d time.Duration
		d, err = time.ParseDuration(s)
		v.n = int64(d)
	default:
		v.n, err = strconv.ParseInt(s, 0, 64)
	}
	return err
}
