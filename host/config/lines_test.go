package config

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// probeLines is how lines were found before scanLines, kept as the oracle
// scanLines is compared with: decode each key into a value that always
// fails, and read the position toml puts in its ParseError. Quadratic (toml
// splits the whole file into lines for each key), so for small inputs only.
func probeLines(md *toml.MetaData, top map[string]toml.Primitive) lineIndex {
	ix := lineIndex{}
	for k, prim := range top {
		probePrimitive(md, prim, []string{k}, ix)
	}
	return ix
}

func probePrimitive(md *toml.MetaData, prim toml.Primitive, path []string, ix lineIndex) int {
	line := probeLine(md, prim)
	first := line
	var sub map[string]toml.Primitive
	if t := md.Type(path...); t != "Array" && t != "ArrayHash" && md.PrimitiveDecode(prim, &sub) == nil {
		for k, c := range sub {
			if cl := probePrimitive(md, c, append(path[:len(path):len(path)], k), ix); cl > 0 && (first == 0 || cl < first) {
				first = cl
			}
		}
	}
	if line == 0 {
		line = first
	}
	ix[keyString(path)] = line
	return first
}

type lineProbe struct{}

func (lineProbe) UnmarshalTOML(any) error { return errors.New("line probe") }

func probeLine(md *toml.MetaData, prim toml.Primitive) int {
	var p lineProbe
	var pe toml.ParseError
	if err := md.PrimitiveDecode(prim, &p); errors.As(err, &pe) {
		return pe.Position.Line
	}
	return 0
}

// hasArrayTable reports whether path or anything under it is an array of
// tables, whose keys toml positions at its last header and scanLines at
// its first.
func hasArrayTable(md *toml.MetaData, path string) bool {
	for _, k := range md.Keys() {
		if s := k.String(); (s == path || strings.HasPrefix(s, path+".")) && md.Type(k...) == "ArrayHash" {
			return true
		}
	}
	return false
}

func isString(md *toml.MetaData, key string) bool {
	for _, k := range md.Keys() {
		if k.String() == key {
			return md.Type(k...) == "String"
		}
	}
	return false
}

// compareLines checks scanLines against the toml probe on a valid file.
func compareLines(t *testing.T, src string) {
	t.Helper()
	var top map[string]toml.Primitive
	md, err := toml.Decode(src, &top)
	if err != nil {
		return
	}
	got, err := scanLines([]byte(src))
	if err != nil {
		var de *depthError
		if !errors.As(err, &de) {
			t.Fatalf("scanLines: %v", err)
		}
		return
	}
	for k, want := range probeLines(&md, top) {
		// toml places a key whose value is a multi-line string where the
		// string ends; scanLines, where the key is.
		if got[k] < want && isString(&md, k) {
			continue
		}
		if got[k] != want && !hasArrayTable(&md, k) {
			t.Fatalf("line of %s: scanLines %d, toml %d\n%s", k, got[k], want, src)
		}
	}
}

func TestScanLinesMatchesToml(t *testing.T) {
	for _, src := range []string{
		"a = 1\n[b]\nc = 2\n",
		"# c\n[plugins.a.config]\nx = 1\n[plugins.a]\npath = \"\"\"\nmulti\"\"\"\nenv.HOME = \"/h\"\n",
		"[a.b]\nx = 1\n[a]\ny = 2\n",
		"x = [\n 1, # one\n 2,\n]\ny = {a = 1, b.c = \"]\"}\nz = 3\n",
		"\"quoted key\" = 1\n'lit.key' = 2\n[\"a b\".c]\nd = '''\nx\n'''\ne = \"\"\"a\"\"\"\"\nf = 1\n",
		"a = \"x # not a comment\" # a comment\nb = 'y'\n",
		"t = 1979-05-27 07:32:00Z\nu = 2\n",
		"[x]\n  [x.y]\n  z = [[1, 2], [3]]\n  w = 4\n",
		"a.b.c = 1\na.b.d = 2\n[e]\nf.g = {h = [1, {i = 2}]}\n",
		"s = \"\"\"\\\n  continued\\\n\"\"\"\nk = 1\n",
	} {
		compareLines(t, src)
	}
}

// Configs nested deeper than MaxDepth are refused before the TOML parser
// sees them: it took 9 s on a 16 KB dotted key, 18 s on 32 KB of nested
// inline tables, and overflowed its stack on 2M nested arrays. A MiB of
// ordinary config loads (its speed is BenchmarkParse's business).
func TestParseBounded(t *testing.T) {
	for name, src := range map[string]string{
		"1 MiB of plugins": pluginsConfig(MaxFileBytes - 200),
		"dotted key":       strings.Repeat("a.", 400_000) + "a = 1\n",
		"dotted header":    "[" + strings.Repeat("a.", 400_000) + "a]\n",
		"nested arrays":    "x = " + strings.Repeat("[", MaxFileBytes-10) + "\n",
		"nested tables":    "x = " + strings.Repeat("{a=", 300_000) + "\n",
		"arrays of tables": nestedArrayTables(17), // each level a key and an array: 34
	} {
		_, err := Parse("pool.toml", []byte(src), dir)
		want := "pool.toml:1: nested more than 32 levels deep"
		switch {
		case strings.HasPrefix(name, "1 MiB"):
			if err != nil {
				t.Errorf("%s: %v", name, firstLine(err))
			}
		case name == "arrays of tables":
			if want = "pool.toml:17: nested more than 32 levels deep"; err == nil || !strings.HasPrefix(err.Error(), want) {
				t.Errorf("%s: error %v, want %q", name, firstLine(err), want)
			}
		case err == nil || !strings.HasPrefix(err.Error(), want):
			t.Errorf("%s: error %v, want %q", name, firstLine(err), want)
		}
	}
	_, err := Parse("pool.toml", make([]byte, MaxFileBytes+1), dir)
	if want := "pool.toml: is larger than the 1048576-byte (1 MiB) limit of a config file: is it the right file?"; err == nil || err.Error() != want {
		t.Errorf("Parse(1 MiB + 1) = %v, want %q", err, want)
	}
}

// nestedArrayTables is [[a]], [[a.a]], ... n levels deep.
func nestedArrayTables(n int) string {
	var b strings.Builder
	for k := 1; k <= n; k++ {
		b.WriteString("[[" + strings.Repeat("a.", k-1) + "a]]\n")
	}
	return b.String()
}

// pluginsConfig is a config of about size bytes: plugin tables with a
// config table each.
func pluginsConfig(size int) string {
	var b strings.Builder
	for i := 0; b.Len() < size-120; i++ {
		fmt.Fprintf(&b, "[plugins.p%d]\npath = \"bin/p%d\"\nworkers = 2\n[plugins.p%d.config]\nformat = \"x%d\"\n", i, i, i, i)
	}
	return b.String()
}

// BenchmarkParse loads configs of growing size: the time per byte stays
// flat (it grew with the size when every key's line was asked of toml:
// 220 s for 1 MB).
func BenchmarkParse(b *testing.B) {
	for _, size := range []int{128 << 10, 256 << 10, 512 << 10, 1 << 20} {
		src := []byte(pluginsConfig(size - 200))
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			b.SetBytes(int64(len(src)))
			for b.Loop() {
				if _, err := Parse("pool.toml", src, dir); err != nil {
					b.Fatal(firstLine(err))
				}
			}
		})
	}
}

func firstLine(err error) string {
	if err == nil {
		return "ok"
	}
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}

// FuzzParse gives the loader arbitrary bytes. It must not panic, must
// return a File or *Errors that match ErrInvalid, and, for valid TOML,
// must find every key on the line toml itself places it.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"", "[pool]\nworkers = 2\n", "[plugins.d]\npath = \"d\"\n[plugins.d.config]\nx = [1, {y = 2}]\n",
		"[pipelines.p]\nstages = [\"d\", {plugin = \"d\", workers = 1}]\n[[pipelines.q.stages]]\nplugin = \"d\"\n",
		"a = \"\"\"x\n\"\"\"\nb = '''y'''\n", "x = [[[[1]]]]", "a.b.c = 1", "[a]]", "x = {", "\"\\", "'''", "x = 1 2\n",
		"[plugins.\"a b\"]\npath = 'p'\n", "[pool]\nchunk_size = 1000000000000\nworkers = 100000\n",
		"x = " + strings.Repeat("[", 31) + strings.Repeat("]", 31), "[[a]]\n[[a.b]]\n[[a.b.c]]\nx = [[{y = [1]}]]\n",
		"a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p = {q.r.s.t.u.v.w.x = {y = [[[[[[[[[[[[[[1]]]]]]]]]]]]]]}}\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse("pool.toml", data, "/srv")
		if (file == nil) == (err == nil) {
			t.Fatalf("Parse = %v, %v: want exactly one", file, err)
		}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() { // Parse joins its *Errors, flat
				var ce *Error
				if !errors.As(e, &ce) || !errors.Is(e, ErrInvalid) {
					t.Fatalf("error %v (%T) is not a *Error matching ErrInvalid", e, e)
				}
			}
		} else if err != nil {
			t.Fatalf("error %v (%T) is not the join of *Errors", err, err)
		}
		if len(data) < 4096 {
			compareLines(t, string(data))
		}
		// What gets past the depth check is no deeper than MaxDepth.
		var top map[string]any
		if _, err := scanLines(data); err == nil {
			if _, err := toml.Decode(string(data), &top); err == nil {
				if d := depthOf(top, 0, 0); d > MaxDepth {
					t.Fatalf("scanLines let through a config %d deep", d)
				}
			}
		}
	})
}

// depthOf is how deep v nests under keys keys and arrays arrays, counted
// as scanLines counts: key parts plus the arrays around, an array itself
// included.
func depthOf(v any, keys, arrays int) int {
	d := keys + arrays
	switch x := v.(type) {
	case map[string]any:
		for _, c := range x {
			d = max(d, depthOf(c, keys+1, arrays))
		}
	case []map[string]any:
		d++
		for _, c := range x {
			d = max(d, depthOf(c, keys, arrays+1))
		}
	case []any:
		d++
		for _, c := range x {
			d = max(d, depthOf(c, keys, arrays+1))
		}
	}
	return d
}
