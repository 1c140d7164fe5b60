// Package quote shows bytes that came from outside (an input item, a
// plugin's error message, a line a task printed) safely in a message or on
// a terminal. It is the one place that decides how: every message of the
// SDK, the host, the CLI and the pipelines that quotes an item or relays a
// plugin's text goes through it.
//
// Escaping turns each byte or rune a terminal could act on into Go's
// escape for it: control characters (\x1b, \x00, \r, ...), DEL, C1
// controls and other runes that are not graphic (\u009b, \u202e), and bytes that
// are not valid UTF-8 (\xff). Printable text, non-ASCII letters included,
// is left as it is; so are quotes and backslashes, so that a JSON item
// reads as itself ("x" stays "x"). Escaping is idempotent: escaped text
// has nothing left to escape, so layers that each escape what they relay
// never escape twice.
package quote

import (
	"fmt"
	"io"
	"unicode"
	"unicode/utf8"
)

// ItemLimit is how many bytes of an item a message quotes. An item is
// quoted to say which one failed; a 20 MB number echoed whole into stderr
// says nothing more.
const ItemLimit = 64

// MessageLimit is how many bytes of a plugin's error message the host
// shows. A Go panic's message and stack measure 1-3 KiB; a message longer
// than this quotes something it should not.
const MessageLimit = 16 << 10

// Item returns b as a message quotes an item: on one line, escaped (new
// lines and tabs too), at most ItemLimit bytes of it, and, when cut,
// followed by "… (N bytes)" with b's size.
func Item(b []byte) string { return Prefix(b, len(b)) }

// Prefix is Item for a caller that kept only the first bytes b of an item
// of size bytes.
func Prefix(b []byte, size int) string {
	return cut(b, size, ItemLimit, true)
}

// Text returns s escaped, new lines and tabs kept: for multi-line text
// such as a plugin's error message with a stack, or a printed line shown
// on a terminal. It returns s itself when there is nothing to escape.
func Text(s string) string {
	if plain(s, false) {
		return s
	}
	return string(appendEscaped(nil, s, false))
}

// Message is Text cut to MessageLimit bytes, for a plugin's message.
func Message(s string) string {
	if len(s) <= MessageLimit {
		return Text(s)
	}
	return cut([]byte(s), len(s), MessageLimit, false)
}

// cut escapes the first limit bytes of b (a prefix of a value of size
// bytes), cut back to a rune boundary, and says how large the value was
// when it was not shown whole.
func cut(b []byte, size, limit int, line bool) string {
	n := min(len(b), limit)
	if n < len(b) {
		// Do not split a rune: that would show its first bytes as
		// invalid UTF-8.
		for k := n; k > 0 && k > n-utf8.UTFMax && k < len(b); k-- {
			if utf8.RuneStart(b[k]) {
				n = k
				break
			}
		}
	}
	out := appendEscaped(make([]byte, 0, n+24), b[:n], line)
	if n < size {
		out = fmt.Appendf(out, "… (%d bytes)", size)
	}
	return string(out)
}

// plain reports whether s needs no escaping.
func plain(s string, line bool) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == 0x7f || c >= utf8.RuneSelf {
			if c >= utf8.RuneSelf || line || (c != '\n' && c != '\t') {
				return false
			}
		}
	}
	return true
}

// appendEscaped appends s to out, escaped. With line set, new lines and
// tabs are escaped too.
func appendEscaped[S ~string | ~[]byte](out []byte, s S, line bool) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c < 0x7f {
			out = append(out, c)
			i++
			continue
		}
		if c < utf8.RuneSelf {
			out = appendControl(out, c, line)
			i++
			continue
		}
		r, size := decodeRune(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			out = append(out, `\x`...)
			out = append(out, hex[c>>4], hex[c&15])
		case unicode.IsGraphic(r):
			out = append(out, string(s[i:i+size])...)
		default:
			out = appendRuneEscape(out, r)
		}
		i += size
	}
	return out
}

// appendRuneEscape appends Go's escape of a rune that is not printable.
func appendRuneEscape(out []byte, r rune) []byte {
	if r < 0x10000 {
		return fmt.Appendf(out, `\u%04x`, r)
	}
	return fmt.Appendf(out, `\U%08x`, r)
}

func appendControl(out []byte, c byte, line bool) []byte {
	switch c {
	case '\n':
		if !line {
			return append(out, '\n')
		}
		return append(out, `\n`...)
	case '\t':
		if !line {
			return append(out, '\t')
		}
		return append(out, `\t`...)
	case '\r':
		return append(out, `\r`...)
	}
	return append(out, '\\', 'x', hex[c>>4], hex[c&15])
}

const hex = "0123456789abcdef"

func decodeRune[S ~string | ~[]byte](s S) (rune, int) {
	switch v := any(s).(type) {
	case string:
		return utf8.DecodeRuneInString(v)
	case []byte:
		return utf8.DecodeRune(v)
	}
	return utf8.DecodeRuneInString(string(s))
}

// NewWriter returns a writer that escapes what it passes on to w as Text
// does: for data written to a terminal, so that what a plugin printed
// cannot move the cursor, clear the screen or retitle the window. A rune
// split between two writes is held until the next one. Write returns
// len(p) when w took everything.
func NewWriter(w io.Writer) io.Writer { return &writer{w: w} }

type writer struct {
	w       io.Writer
	pending []byte // the start of a rune cut off by the end of the last write
	buf     []byte
}

func (e *writer) Write(p []byte) (int, error) {
	data := p
	if len(e.pending) > 0 {
		data = append(e.pending, p...)
		e.pending = nil
	}
	// Hold a rune that is cut short, unless it can never be completed.
	keep := len(data)
	for k := len(data) - 1; k >= 0 && k >= len(data)-utf8.UTFMax+1; k-- {
		if utf8.RuneStart(data[k]) {
			if data[k] >= utf8.RuneSelf && !utf8.FullRune(data[k:]) {
				keep = k
			}
			break
		}
	}
	if keep < len(data) {
		e.pending = append([]byte(nil), data[keep:]...)
	}
	e.buf = appendEscaped(e.buf[:0], data[:keep], false)
	if _, err := e.w.Write(e.buf); err != nil {
		return 0, err
	}
	return len(p), nil
}
