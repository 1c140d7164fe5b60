package config

import (
	"errors"

	"github.com/BurntSushi/toml"
)

// lineIndex maps a dotted key (toml.Key.String) to the line it is defined
// on: a table's header line, or a key's "key = value" line.
type lineIndex map[string]int

// get returns the line of path, or of its nearest ancestor the index knows
// (a missing key is reported at its table), or 0.
func (ix lineIndex) get(path []string) int {
	for n := len(path); n > 0; n-- {
		if l := ix[toml.Key(path[:n]).String()]; l > 0 {
			return l
		}
	}
	return 0
}

// indexLines records the line of every key and table under top.
//
// BurntSushi/toml v1.6.0 keeps key positions unexported, but when an
// Unmarshaler fails, MetaData wraps its error in a ParseError positioned at
// the key being decoded. Decoding each Primitive into lineProbe reads that
// position without re-parsing the file. Arrays are not descended into:
// their elements (inline tables, [[array tables]]) share the line of the
// array's key. TestLineNumbers pins this, so a toml upgrade that changes it
// fails loudly rather than printing line 0.
func indexLines(md *toml.MetaData, top map[string]toml.Primitive) lineIndex {
	ix := lineIndex{}
	for k, prim := range top {
		indexPrimitive(md, prim, []string{k}, ix)
	}
	return ix
}

// indexPrimitive records the line of path and everything under it, and
// returns the first line the subtree occupies (0 if unknown).
func indexPrimitive(md *toml.MetaData, prim toml.Primitive, path []string, ix lineIndex) int {
	line := keyLine(md, prim)
	first := line
	var sub map[string]toml.Primitive
	if t := md.Type(path...); t != "Array" && t != "ArrayHash" && md.PrimitiveDecode(prim, &sub) == nil {
		for k, c := range sub {
			if cl := indexPrimitive(md, c, append(path[:len(path):len(path)], k), ix); cl > 0 && (first == 0 || cl < first) {
				first = cl
			}
		}
	}
	if line == 0 {
		// A table only implied by [a.b.c] or a.b = 1: report it where it
		// first appears.
		line = first
	}
	ix[keyString(path)] = line
	return first
}

// lineProbe is an Unmarshaler that always fails, to learn a key's position.
type lineProbe struct{}

var errProbe = errors.New("line probe")

func (lineProbe) UnmarshalTOML(any) error { return errProbe }

func keyLine(md *toml.MetaData, prim toml.Primitive) int {
	var p lineProbe
	var pe toml.ParseError
	if err := md.PrimitiveDecode(prim, &p); errors.As(err, &pe) {
		return pe.Position.Line
	}
	return 0
}

// keyString is path as a dotted TOML key, quoting parts that need it.
func keyString(path []string) string { return toml.Key(path).String() }
