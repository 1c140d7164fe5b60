// Package jsonv checks JSON values without decoding them: the host passes
// values through as bytes, but what it writes as JSON Lines must be JSON.
package jsonv

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// OneLine reports whether v is exactly one JSON value (white space
// around it allowed), valid UTF-8, with no line break.
func OneLine(v []byte) bool {
	if len(v) == 0 {
		return false
	}
	switch c := v[0]; {
	case c == '-' || c >= '0' && c <= '9':
		if IsNumber(v) {
			return true
		}
	case c == '"':
		if plain, ok := plainJSONString(v); ok {
			return plain
		}
	case c == 't':
		if string(v) == "true" {
			return true
		}
	case c == 'f':
		if string(v) == "false" {
			return true
		}
	case c == 'n':
		if string(v) == "null" {
			return true
		}
	}
	return json.Valid(v) && bytes.IndexByte(v, '\n') < 0 && bytes.IndexByte(v, '\r') < 0 && utf8.Valid(v)
}

// plainJSONString checks a string value without escapes in one pass: it
// reports ok=false when v needs the full check (an escape, or not a lone
// string), else whether it is valid.
func plainJSONString(v []byte) (valid, ok bool) {
	ascii := true
	for i := 1; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '"':
			if i != len(v)-1 {
				return false, false
			}
			return ascii || utf8.Valid(v), true
		case c == '\\':
			return false, false
		case c < 0x20:
			return false, true
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return false, true // no closing quote
}

// IsNumber reports whether b is exactly one JSON number.
func IsNumber(b []byte) bool {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i = digits(b, i)
	default:
		return false
	}
	if i < len(b) && b[i] == '.' {
		if i = digits(b, i+1); b[i-1] == '.' {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		start := i
		if i = digits(b, i); i == start {
			return false
		}
	}
	return i == len(b)
}

// digits returns the index after the run of decimal digits at b[i:].
func digits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}
