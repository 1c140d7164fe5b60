package config

import (
	"bytes"
	"fmt"
	"strconv"

	"github.com/BurntSushi/toml"
)

// MaxFileBytes is the largest config file Load and Parse accept. A
// pool.toml describing hundreds of plugins and pipelines is tens of KiB;
// one of a MiB of plugin tables loaded in 0.7-1.3 s on a 2-core machine
// busy with other work (toml's parser is most of it), and a bound keeps a
// mistaken -c (a log file, a data file) from taking memory and time.
const MaxFileBytes = 1 << 20

// MaxDepth bounds how deep a config nests: the parts of any key's full
// path (tables, dotted keys, inline tables) plus the arrays around it.
// pool.toml needs 5 at most ([plugins.NAME.config] plus a little
// structure); BurntSushi/toml's work per key grows faster than linearly
// with its depth (a 16 KB dotted key measured 9 s, 32 KB of nested
// inline tables 18 s) and it parses nested arrays by recursion (2M levels
// overflowed the stack), so depth is checked before it parses.
const MaxDepth = 32

// lineIndex maps a dotted key (toml.Key.String) to the line it is defined
// on: a table's header line, or a key's "key = value" line. Element i of
// an array has its start line under the key followed by "[i]".
type lineIndex map[string]int

// get returns the line of path, or of its nearest ancestor the index knows
// (a missing key is reported at its table), or 0.
func (ix lineIndex) get(path []string) int {
	for n := len(path); n > 0; n-- {
		if l := ix[keyString(path[:n])]; l > 0 {
			return l
		}
	}
	return 0
}

// elem returns the line element i of the array at path starts on, or the
// array's own line when it is not known.
func (ix lineIndex) elem(path []string, i int) int {
	if l := ix[elemKey(keyString(path), i)]; l > 0 {
		return l
	}
	return ix.get(path)
}

func elemKey(key string, i int) string { return key + "[" + strconv.Itoa(i) + "]" }

// keyString is path as a dotted TOML key, quoting parts that need it.
func keyString(path []string) string { return toml.Key(path).String() }

// depthError reports a config nested deeper than MaxDepth.
type depthError struct{ line int }

func (e *depthError) Error() string {
	return fmt.Sprintf("nested more than %d levels deep (tables, dotted keys, inline tables and arrays): flatten it", MaxDepth)
}

// scanLines reads data once, in linear time, recording the line of every
// key and table, and fails with a *depthError where data nests deeper
// than MaxDepth. It runs before the TOML parser, on any bytes: it never
// fails on invalid TOML (the parser reports that), it only indexes less.
//
// It replaces asking BurntSushi/toml for each key's position (v1.6.0
// keeps them unexported; a decoder that always fails got them out of its
// ParseError), which split the whole file into lines for every key:
// quadratic, 220 s for a 1 MB pool.toml.
//
// Lines follow the file: a key's line is where it is defined; a table
// only implied by [a.b.c] or a.b = 1 is where it first appears; an array
// of tables ([[a]]) is at its first header, each element at its own.
// Keys inside arrays are not indexed (their elements are).
func scanLines(data []byte) (lineIndex, error) {
	// About a key a line: sized once, the maps rarely rehash (a file of
	// blank lines gets no more than 64Ki entries' room).
	n := min(bytes.Count(data, []byte{'\n'})+1, 1<<16)
	s := &scanner{data: data, line: 1, ix: make(lineIndex, n), explicit: make(map[string]bool, n), arrays: map[string]int{}}
	if err := s.top(); err != nil {
		return nil, err
	}
	return s.ix, nil
}

type scanner struct {
	data     []byte
	i        int
	line     int
	ix       lineIndex
	explicit map[string]bool // keys whose definition was seen: an implied sighting does not move them
	arrays   map[string]int  // arrays of tables: elements seen so far
}

func (s *scanner) eof() bool  { return s.i >= len(s.data) }
func (s *scanner) peek() byte { return s.data[s.i] }

// record notes that path is defined on line, and the tables it implies
// ([a.b] and a.b = 1 imply a) appear there, unless they appeared before.
func (s *scanner) record(path []string, line int) {
	for n := 1; n < len(path); n++ {
		if k := keyString(path[:n]); s.ix[k] == 0 {
			s.ix[k] = line
		}
	}
	if k := keyString(path); !s.explicit[k] {
		s.explicit[k] = true
		s.ix[k] = line
	}
}

// arraysIn counts the proper prefixes of path that are arrays of tables:
// the arrays a table at path is in. Keys under one belong to one of its
// elements, and are not indexed.
func (s *scanner) arraysIn(path []string) int {
	n := 0
	for k := 1; k < len(path); k++ {
		if _, ok := s.arrays[keyString(path[:k])]; ok {
			n++
		}
	}
	return n
}

// top scans the file: table headers and key = value lines.
func (s *scanner) top() error {
	var table []string // the current table
	arrays := 0        // the arrays of tables it is in (itself included)
	record := true     // keys of the current table are indexed
	for {
		s.skipBlank(true)
		if s.eof() {
			return nil
		}
		line := s.line
		if s.peek() == '[' {
			s.i++
			array := !s.eof() && s.peek() == '['
			if array {
				s.i++
			}
			path := s.key()
			if len(path) > MaxDepth {
				return &depthError{line}
			}
			table, arrays = path, s.arraysIn(path)
			if array {
				arrays++
			}
			if len(path)+arrays > MaxDepth {
				return &depthError{line}
			}
			// Index it unless it is inside an array of tables; an array
			// of tables is indexed, and each element, but not the keys in
			// them.
			record = arrays == 0 || (array && arrays == 1)
			if record {
				s.record(path, line)
			}
			if array {
				k := keyString(path)
				n := s.arrays[k]
				s.arrays[k] = n + 1
				if record {
					s.ix[elemKey(k, n)] = line
				}
				record = false
			}
			s.skipLine()
			continue
		}
		key := s.key()
		path := append(table[:len(table):len(table)], key...)
		if len(path)+arrays > MaxDepth {
			return &depthError{line}
		}
		s.skipSpace()
		if len(key) == 0 || s.eof() || s.peek() != '=' {
			s.skipLine() // not TOML: the parser says why
			continue
		}
		s.i++
		if record {
			s.record(path, line)
		}
		if err := s.value(path, record, arrays); err != nil {
			return err
		}
		s.skipLine()
	}
}

// frame is an array or inline table the value scan is inside.
type frame struct {
	inline bool
	path   []string // the key the container is the value of
	record bool     // index the keys (inline) or elements (array) in it
	elems  int      // array: elements seen
	arrays int      // arrays around this frame, itself included
}

// value scans the value of the key at path, which is in arrays arrays,
// up to its end. Containers are
// tracked on a stack of their own, not by recursion: depth is bounded
// before anything deep is built.
func (s *scanner) value(path []string, record bool, arrays int) error {
	var stack []frame
	// open starts the value at s.i, which belongs to key path: a
	// container is pushed, anything else skipped.
	open := func(path []string, record bool, arrays int) error {
		switch c := s.peek(); c {
		case '[', '{':
			f := frame{inline: c == '{', path: path, record: record, arrays: arrays}
			if !f.inline {
				f.arrays++
			}
			if len(path)+f.arrays > MaxDepth {
				return &depthError{s.line}
			}
			s.i++
			stack = append(stack, f)
		case '"', '\'':
			s.skipString()
		default:
			start := s.i
			s.skipBare()
			if s.i == start && c != '\n' {
				s.i++ // not a value: skip it, the parser says why
			}
		}
		return nil
	}
	s.skipSpace()
	if s.eof() || s.peek() == '\n' || s.peek() == '#' {
		return nil
	}
	if err := open(path, record, arrays); err != nil {
		return err
	}
	for len(stack) > 0 {
		f := &stack[len(stack)-1]
		s.skipBlank(true) // new lines and comments are allowed in arrays (and TOML 1.1 inline tables)
		if s.eof() {
			return nil
		}
		switch c := s.peek(); {
		case c == ',':
			s.i++
		case !f.inline && c == ']', f.inline && c == '}':
			s.i++
			stack = stack[:len(stack)-1]
		case !f.inline:
			if f.record {
				s.ix[elemKey(keyString(f.path), f.elems)] = s.line
			}
			f.elems++
			// Elements of elements are not indexed.
			if err := open(f.path, false, f.arrays); err != nil {
				return err
			}
		default:
			line := s.line
			key := s.key()
			kp := append(f.path[:len(f.path):len(f.path)], key...)
			if len(kp)+f.arrays > MaxDepth {
				return &depthError{line}
			}
			s.skipSpace()
			if len(key) == 0 || s.eof() || s.peek() != '=' {
				if !s.eof() && s.peek() != '}' {
					s.i++ // not TOML: keep going, the parser says why
				}
				continue
			}
			s.i++
			if f.record {
				s.record(kp, line)
			}
			s.skipSpace()
			if s.eof() {
				return nil
			}
			if err := open(kp, f.record, f.arrays); err != nil {
				return err
			}
		}
	}
	return nil
}

// key reads a dotted key: bare, "basic" or 'literal' parts separated by
// dots, with spaces around them. It stops at anything else.
func (s *scanner) key() []string {
	var parts []string
	for {
		s.skipSpace()
		if s.eof() {
			return parts
		}
		start := s.i
		switch s.peek() {
		case '"', '\'':
			s.skipString()
			raw := string(s.data[start:s.i])
			part := raw
			if len(raw) >= 2 {
				part = raw[1 : len(raw)-1]
				if raw[0] == '"' {
					if u, err := strconv.Unquote(raw); err == nil {
						part = u
					}
				}
			}
			parts = append(parts, part)
		default:
			for !s.eof() && !isKeyStop(s.peek()) {
				s.i++
			}
			if s.i == start {
				return parts
			}
			parts = append(parts, string(s.data[start:s.i]))
		}
		if len(parts) > MaxDepth {
			return parts // too deep: the caller says so, without reading the rest
		}
		s.skipSpace()
		if s.eof() || s.peek() != '.' {
			return parts
		}
		s.i++
	}
}

func isKeyStop(c byte) bool {
	switch c {
	case ' ', '\t', '\r', '\n', '.', '=', '[', ']', '{', '}', ',', '#', '"', '\'':
		return true
	}
	return false
}

// skipBare skips a bare value: a number, bool, date or time.
func (s *scanner) skipBare() {
	for !s.eof() {
		switch s.peek() {
		case ' ', '\t', '\r', '\n', ',', '[', ']', '{', '}', '#', '"', '\'', '=':
			return
		}
		s.i++
	}
}

// skipString skips a string of any of TOML's four kinds, starting at its
// opening quote.
func (s *scanner) skipString() {
	q := s.peek()
	if s.i+2 < len(s.data) && s.data[s.i+1] == q && s.data[s.i+2] == q {
		s.i += 3
		for !s.eof() {
			c := s.peek()
			switch {
			case c == '\\' && q == '"':
				s.i++
				if s.eof() {
					return
				}
				if s.peek() == '\n' {
					s.line++
				}
			case c == '\n':
				s.line++
			case c == q && s.i+2 < len(s.data) && s.data[s.i+1] == q && s.data[s.i+2] == q:
				s.i += 3
				// Up to two more quotes belong to the content: """a"""" is a".
				for n := 0; n < 2 && !s.eof() && s.peek() == q; n++ {
					s.i++
				}
				return
			}
			s.i++
		}
		return
	}
	s.i++
	for !s.eof() {
		c := s.peek()
		switch {
		case c == '\n':
			return // unterminated: the parser says so
		case c == '\\' && q == '"':
			s.i++
			if s.eof() || s.peek() == '\n' {
				return
			}
		case c == q:
			s.i++
			return
		}
		s.i++
	}
}

// skipSpace skips spaces and tabs.
func (s *scanner) skipSpace() {
	for !s.eof() && (s.peek() == ' ' || s.peek() == '\t') {
		s.i++
	}
}

// skipBlank skips white space, new lines and comments.
func (s *scanner) skipBlank(newlines bool) {
	for !s.eof() {
		switch s.peek() {
		case ' ', '\t', '\r':
			s.i++
		case '\n':
			if !newlines {
				return
			}
			s.line++
			s.i++
		case '#':
			for !s.eof() && s.peek() != '\n' {
				s.i++
			}
		default:
			return
		}
	}
}

// skipLine skips to the start of the next line: the rest of a header or
// a key = value line is a comment at most.
func (s *scanner) skipLine() {
	for !s.eof() {
		c := s.peek()
		s.i++
		if c == '\n' {
			s.line++
			return
		}
	}
}
