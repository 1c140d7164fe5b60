package config

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/pluginpool/pluginpool/host/pool"
)

// Keys of each table, for unknown-key suggestions.
var (
	topKeys      = []string{"pool", "plugins", "pipelines", "cluster"}
	pluginKeys   = append([]string{"path", "args", "env", "inherit_env", "pass_env", "sha256", "tls", "version", "config"}, settingNames...)
	pipelineKeys = []string{"stages", "input", "input_format", "output", "ordered", "default"}
	stageKeys    = append([]string{"plugin"}, settingNames...)
)

// nameRE is what a plugin or pipeline name must look like: it appears in
// CLI arguments, logs and file names.
var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

// parser walks the decoded TOML tree, filling a File and collecting every
// problem rather than stopping at the first.
type parser struct {
	ctx   context.Context // parse stops early when it is done
	file  string          // base name for errors
	dir   string          // absolute directory relative paths resolve against
	lines lineIndex
	errs  []error
}

// loc is where a value sits, for errors: its line and display key.
type loc struct {
	line int
	key  string
}

func (p *parser) at(path ...string) loc {
	return loc{line: p.lines.get(path), key: keyString(path)}
}

func (p *parser) errorf(at loc, format string, args ...any) {
	p.errs = append(p.errs, &Error{File: p.file, Line: at.line, Key: at.key, Msg: fmt.Sprintf(format, args...)})
}

// parse fills f from data and reports whether it found no problems.
func (p *parser) parse(f *File, data []byte) bool {
	if len(data) > MaxFileBytes {
		p.errs = append(p.errs, tooBig(p.file, 0)) // Load may have read only so far
		return false
	}
	// Before the TOML parser: it is not linear in depth (see MaxDepth).
	lines, err := scanLines(data)
	var de *depthError
	if errors.As(err, &de) {
		p.errs = append(p.errs, &Error{File: p.file, Line: de.line, Msg: de.Error()})
		return false
	}
	if p.ctx.Err() != nil {
		return false
	}
	var top map[string]toml.Primitive
	md, err := toml.Decode(string(data), &top)
	if err != nil {
		p.syntaxError(err)
		return false
	}
	if p.ctx.Err() != nil {
		return false
	}
	p.lines = lines
	root := make(map[string]any, len(top))
	for k, prim := range top {
		var v any
		if err := md.PrimitiveDecode(prim, &v); err != nil {
			p.errorf(p.at(k), "%v", err)
			continue
		}
		root[k] = v
	}

	// Order matters: plugins inherit [pool], stages refer to plugins.
	if v, ok := root["pool"]; ok {
		if tbl, ok := p.table(p.at("pool"), v); ok {
			pt := p.settings([]string{"pool"}, tbl)
			pt.apply(&f.Pool)
		}
	}
	if v, ok := root["plugins"]; ok {
		if tbl, ok := p.table(p.at("plugins"), v); ok {
			for _, name := range sortedKeys(tbl) {
				f.Plugins[name] = p.plugin(f, name, tbl[name])
			}
		}
	}
	if v, ok := root["pipelines"]; ok {
		if tbl, ok := p.table(p.at("pipelines"), v); ok {
			for _, name := range sortedKeys(tbl) {
				f.Pipelines[name] = p.pipeline(f, name, tbl[name])
			}
		}
		p.oneDefault(f)
	}
	if v, ok := root["cluster"]; ok {
		f.Cluster = p.cluster(v)
	}
	for _, k := range sortedKeys(root) {
		if !slices.Contains(topKeys, k) {
			p.unknownKey(p.at(k), k, topKeys, "")
		}
	}
	return len(p.errs) == 0
}

// syntaxError reports a TOML syntax error with its line and column.
func (p *parser) syntaxError(err error) {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		p.errs = append(p.errs, &Error{File: p.file, Line: pe.Position.Line, Col: pe.Position.Col,
			Msg: "TOML syntax error: " + pe.Message, Err: err})
		return
	}
	p.errs = append(p.errs, &Error{File: p.file, Msg: err.Error(), Err: err})
}

// settings reads the pool keys of the [pool] table and reports any other key.
func (p *parser) settings(path []string, tbl map[string]any) patch {
	pt := patch{}
	for _, k := range sortedKeys(tbl) {
		at := p.at(append(path, k)...)
		if sk := lookupSetting(k); sk != nil {
			p.setting(pt, sk, at, tbl[k])
			continue
		}
		hint := ""
		switch {
		case slices.Contains(pluginKeys, k):
			hint = fmt.Sprintf("%s belongs in a [plugins.NAME] table", k)
		case slices.Contains(pipelineKeys, k):
			hint = fmt.Sprintf("%s belongs in a [pipelines.NAME] table", k)
		}
		p.unknownKey(at, k, settingNames, hint)
	}
	return pt
}

// plugin reads one [plugins.NAME] table. It returns a Plugin even when the
// table has problems, so stages naming it are not reported as unknown too.
func (p *parser) plugin(f *File, name string, v any) *Plugin {
	path := []string{"plugins", name}
	pl := &Plugin{Name: name, Settings: f.Pool, Config: json.RawMessage("{}"), InheritEnv: true, Line: p.lines.get(path)}
	if !nameRE.MatchString(name) {
		p.errorf(p.at(path...), "bad plugin name %q: use lower-case letters, digits, '_' and '-', starting with a letter or digit", name)
	}
	tbl, ok := v.(map[string]any)
	if !ok {
		p.errorf(p.at(path...), "expected a table such as [plugins.%s] with path = \"bin/plugins/%s\", got %s", name, name, describe(v))
		return pl
	}
	pt := patch{}
	for _, k := range sortedKeys(tbl) {
		at := p.at("plugins", name, k)
		val := tbl[k]
		switch k {
		case "path":
			if s, ok := p.str(at, val); ok {
				if s == "" {
					p.errorf(at, "must not be empty: the plugin executable, e.g. \"bin/plugins/%s\"", name)
				} else {
					pl.Path = p.resolve(s)
				}
			}
		case "args":
			pl.Args = p.strList(at, val)
		case "env":
			pl.Env = p.env([]string{"plugins", name, k}, val)
		case "inherit_env":
			if b, ok := p.boolean(at, val); ok {
				pl.InheritEnv = b
			}
		case "pass_env":
			pl.PassEnv = p.strList(at, val)
			for _, v := range pl.PassEnv {
				if v == "" || strings.ContainsAny(v, "=\x00") {
					p.errorf(at, "%q is not an environment variable name", v)
				}
			}
		case "tls":
			if b, ok := p.boolean(at, val); ok {
				pl.TLS = b
			}
		case "sha256":
			if s, ok := p.str(at, val); ok {
				s = strings.ToLower(strings.TrimSpace(s))
				if s != "" && !pool.ValidSHA256(s) {
					p.errorf(at, "%q is not a sha256 digest: expected 64 hex digits (sha256sum prints one)", s)
				} else {
					pl.SHA256 = s
				}
			}
		case "version":
			if s, ok := p.str(at, val); ok {
				pl.Version = strings.TrimSpace(s)
			}
		case "config":
			if t, ok := p.table(at, val); ok {
				js, err := json.Marshal(jsonable(t))
				if err != nil {
					p.errorf(at, "cannot be passed to the plugin as JSON: %v", err)
				} else {
					pl.Config = js
				}
			}
		default:
			if sk := lookupSetting(k); sk != nil {
				p.setting(pt, sk, at, val)
				continue
			}
			hint := ""
			if slices.Contains(pipelineKeys, k) {
				hint = fmt.Sprintf("%s belongs in a [pipelines.NAME] table", k)
			}
			p.unknownKey(at, k, pluginKeys, hint)
		}
	}
	if _, ok := tbl["path"]; !ok {
		p.errorf(p.at(path...), "path is required: the plugin executable, e.g. path = \"bin/plugins/%s\"", name)
	}
	// Only when inherit_env is left out or true: a mistyped one has its
	// own error.
	if v, set := tbl["inherit_env"]; tbl["pass_env"] != nil && (!set || v == true) {
		p.errorf(p.at("plugins", name, "pass_env"), "has no effect: the plugin inherits the whole environment unless inherit_env = false")
	}
	pt.apply(&pl.Settings)
	return pl
}

// pipeline reads one [pipelines.NAME] table.
func (p *parser) pipeline(f *File, name string, v any) *Pipeline {
	path := []string{"pipelines", name}
	pp := &Pipeline{Name: name, Input: "-", InputFormat: FormatJSONL, Output: "-", Ordered: true, Line: p.lines.get(path)}
	if !nameRE.MatchString(name) {
		p.errorf(p.at(path...), "bad pipeline name %q: use lower-case letters, digits, '_' and '-', starting with a letter or digit", name)
	}
	tbl, ok := p.table(p.at(path...), v)
	if !ok {
		return pp
	}
	for _, k := range sortedKeys(tbl) {
		at := p.at("pipelines", name, k)
		val := tbl[k]
		switch k {
		case "stages":
			pp.Stages = p.stages(f, at, val)
		case "input", "output":
			s, ok := p.str(at, val)
			if !ok {
				continue
			}
			if s == "" {
				p.errorf(at, "must not be empty: write \"-\" for std%s, or a file name", map[string]string{"input": "in", "output": "out"}[k])
				continue
			}
			if s != "-" {
				s = p.resolve(s)
			}
			if k == "input" {
				pp.Input = s
			} else {
				pp.Output = s
			}
		case "input_format":
			if s, ok := p.str(at, val); ok {
				switch Format(s) {
				case FormatJSONL, FormatLines:
					pp.InputFormat = Format(s)
				default:
					p.errorf(at, "unknown format %q: use \"jsonl\" (one JSON value per line) or \"lines\" (each line a string)%s",
						s, didYouMean(s, []string{string(FormatJSONL), string(FormatLines)}))
				}
			}
		case "ordered":
			if b, ok := p.boolean(at, val); ok {
				pp.Ordered = b
			}
		case "default":
			if b, ok := p.boolean(at, val); ok {
				pp.Default = b
			}
		default:
			hint := ""
			if lookupSetting(k) != nil {
				hint = fmt.Sprintf("pool keys are set per plugin, or per stage: stages = [{plugin = \"NAME\", %s = ...}]", k)
			}
			p.unknownKey(at, k, pipelineKeys, hint)
		}
	}
	if _, ok := tbl["stages"]; !ok {
		p.errorf(p.at(path...), "stages is required: the plugins to run, in order, e.g. stages = [\"double\", \"printer\"]")
	}
	return pp
}

// stages reads a pipeline's stages array: plugin names or inline tables
// {plugin = "NAME", <pool keys>}. Array-of-tables syntax
// ([[pipelines.NAME.stages]]) works too.
func (p *parser) stages(f *File, at loc, v any) []Stage {
	var elems []any
	switch x := v.(type) {
	case []any:
		elems = x
	case []map[string]any:
		for _, m := range x {
			elems = append(elems, m)
		}
	default:
		p.errorf(at, "expected an array of plugin names, got %s", describe(v))
		return nil
	}
	if len(elems) == 0 {
		p.errorf(at, "must name at least one plugin, e.g. stages = [\"double\", \"printer\"]")
		return nil
	}
	stages := make([]Stage, 0, len(elems))
	for i, e := range elems {
		eat := loc{line: at.line, key: fmt.Sprintf("%s[%d]", at.key, i)}
		if l := p.lines[elemKey(at.key, i)]; l > 0 {
			eat.line = l // the line the stage is written on
		}
		st := Stage{Line: at.line}
		pt := patch{}
		switch x := e.(type) {
		case string:
			st.Plugin = x
		case map[string]any:
			for _, k := range sortedKeys(x) {
				kat := loc{line: eat.line, key: eat.key + "." + toml.Key{k}.String()}
				if k == "plugin" {
					if s, ok := p.str(kat, x[k]); ok {
						st.Plugin = s
					}
				} else if sk := lookupSetting(k); sk != nil {
					p.setting(pt, sk, kat, x[k])
				} else {
					p.unknownKey(kat, k, stageKeys, "")
				}
			}
			if _, ok := x["plugin"]; !ok {
				p.errorf(eat, "plugin is required: {plugin = \"NAME\", ...}")
			}
		default:
			p.errorf(eat, "expected a plugin name or a table {plugin = \"NAME\", workers = 1}, got %s", describe(e))
		}
		if pl, ok := f.Plugins[st.Plugin]; ok {
			st.Settings = pl.Settings
		} else if st.Plugin != "" {
			p.errorf(eat, "unknown plugin %q: add a [plugins.%s] table%s", st.Plugin, st.Plugin, didYouMean(st.Plugin, sortedKeys(f.Plugins)))
		}
		pt.apply(&st.Settings)
		st.Overrides = pt.keys()
		stages = append(stages, st)
	}
	return stages
}

// oneDefault reports every pipeline marked default after the first.
func (p *parser) oneDefault(f *File) {
	var defs []*Pipeline
	for _, pp := range f.Pipelines {
		if pp.Default {
			defs = append(defs, pp)
		}
	}
	sort.Slice(defs, func(i, j int) bool {
		if defs[i].Line != defs[j].Line {
			return defs[i].Line < defs[j].Line
		}
		return defs[i].Name < defs[j].Name
	})
	for _, pp := range defs[min(1, len(defs)):] {
		p.errorf(p.at("pipelines", pp.Name, "default"), "pipeline %q (line %d) is already the default; at most one pipeline may set default = true",
			defs[0].Name, defs[0].Line)
	}
}

// unknownKey reports key k at at, suggesting where it belongs (hint) or the
// closest known key.
func (p *parser) unknownKey(at loc, k string, known []string, hint string) {
	if hint != "" {
		p.errorf(at, "unknown key: %s", hint)
		return
	}
	p.errorf(at, "unknown key%s", didYouMean(k, known))
}

func (p *parser) resolve(path string) string {
	if filepath.IsAbs(path) {
		return filepath.Clean(path)
	}
	return filepath.Join(p.dir, path)
}

func (p *parser) table(at loc, v any) (map[string]any, bool) {
	t, ok := v.(map[string]any)
	if !ok {
		p.errorf(at, "expected a table, got %s", describe(v))
	}
	return t, ok
}

func (p *parser) str(at loc, v any) (string, bool) {
	s, ok := v.(string)
	if !ok {
		p.errorf(at, "expected a string, got %s", describe(v))
	}
	return s, ok
}

func (p *parser) boolean(at loc, v any) (bool, bool) {
	b, ok := v.(bool)
	if !ok {
		p.errorf(at, "expected true or false, got %s", describe(v))
	}
	return b, ok
}

func (p *parser) strList(at loc, v any) []string {
	arr, ok := v.([]any)
	if !ok {
		p.errorf(at, "expected an array of strings, got %s", describe(v))
		return nil
	}
	out := make([]string, 0, len(arr))
	for i, e := range arr {
		s, ok := e.(string)
		if !ok {
			p.errorf(loc{at.line, fmt.Sprintf("%s[%d]", at.key, i)}, "expected a string, got %s", describe(e))
			continue
		}
		out = append(out, s)
	}
	return out
}

func (p *parser) env(path []string, v any) map[string]string {
	at := p.at(path...)
	t, ok := v.(map[string]any)
	if !ok {
		p.errorf(at, "expected a table of strings such as {LOG_LEVEL = \"debug\"}, got %s", describe(v))
		return nil
	}
	out := make(map[string]string, len(t))
	for _, k := range sortedKeys(t) {
		kat := p.at(append(path[:len(path):len(path)], k)...)
		if k == "" || strings.ContainsAny(k, "=\x00") {
			p.errorf(kat, "%q is not an environment variable name", k)
			continue
		}
		s, ok := t[k].(string)
		if !ok {
			p.errorf(kat, "expected a string, got %s (quote it)", describe(t[k]))
			continue
		}
		out[k] = s
	}
	return out
}

// jsonable returns v with TOML datetimes as strings in their TOML form, so
// a local date reaches the plugin as "2024-01-02" rather than as midnight
// UTC. toml marks local datetimes, dates and times by location name.
func jsonable(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = jsonable(e)
		}
		return out
	case []map[string]any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonable(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonable(e)
		}
		return out
	case time.Time:
		switch x.Location().String() {
		case "datetime-local":
			return x.Format("2006-01-02T15:04:05.999999999")
		case "date-local":
			return x.Format("2006-01-02")
		case "time-local":
			return x.Format("15:04:05.999999999")
		}
		return x.Format(time.RFC3339Nano)
	}
	return v
}
