package quote

import (
	"bytes"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestItem(t *testing.T) {
	for in, want := range map[string]string{
		``:                      ``,
		`42`:                    `42`,
		`"x"`:                   `"x"`,
		`"naïve"`:               `"naïve"`,
		"\"\xff\"":              `"\xff"`,
		"a\x00b":                `a\x00b`,
		"\x1b[2J\x1b]0;pwned\a": `\x1b[2J\x1b]0;pwned\x07`,
		"tab\there\r\n":         `tab\there\r\n`,
		"del\x7f":               `del\x7f`,
		"c1\u009b31m":           `c1\u009b31m`,
		"rtl\u202eevil":         `rtl\u202eevil`,
		`back\slash`:            `back\slash`,
		"\U000e0001tag":         `\U000e0001tag`,
	} {
		if got := Item([]byte(in)); got != want {
			t.Errorf("Item(%q) = %q, want %q", in, got, want)
		}
	}
}

// A long item is cut to ItemLimit bytes, at a rune boundary, with its size.
func TestItemCut(t *testing.T) {
	long := strings.Repeat("7", 20<<20)
	if got, want := Item([]byte(long)), strings.Repeat("7", 64)+"… (20971520 bytes)"; got != want {
		t.Errorf("Item(20 MiB) = %q, want %q", got, want)
	}
	// 63 ASCII bytes, then "é" (2 bytes) straddling the limit: cut before it.
	s := strings.Repeat("a", 63) + "é" + "bbb"
	if got, want := Item([]byte(s)), strings.Repeat("a", 63)+"… (68 bytes)"; got != want {
		t.Errorf("Item(rune across the limit) = %q, want %q", got, want)
	}
	// Exactly the limit: shown whole.
	s = strings.Repeat("a", 64)
	if got := Item([]byte(s)); got != s {
		t.Errorf("Item(64 bytes) = %q, want it whole", got)
	}
	// A control byte counts as one byte of input, however long its escape.
	s = strings.Repeat("\x1b", 65)
	if got, want := Item([]byte(s)), strings.Repeat(`\x1b`, 64)+"… (65 bytes)"; got != want {
		t.Errorf("Item(65 ESC) = %q, want %q", got, want)
	}
	if got, want := Prefix([]byte("123"), 1000), "123… (1000 bytes)"; got != want {
		t.Errorf("Prefix = %q, want %q", got, want)
	}
}

func TestText(t *testing.T) {
	for in, want := range map[string]string{
		"plain":                     "plain",
		"panic: boom\n\tmain.go:12": "panic: boom\n\tmain.go:12",
		"bad \xff\x00\x1b[31mred":   `bad \xff\x00\x1b[31mred`,
		"cr\roverwrite":             `cr\roverwrite`,
	} {
		if got := Text(in); got != want {
			t.Errorf("Text(%q) = %q, want %q", in, got, want)
		}
	}
	long := strings.Repeat("x", MessageLimit+10)
	if got, want := Message(long), strings.Repeat("x", MessageLimit)+"… (16394 bytes)"; got != want {
		t.Errorf("Message(long) = %d bytes %q..., want %d bytes", len(got), got[len(got)-20:], len(want))
	}
	if got := Message("short\x1b"); got != `short\x1b` {
		t.Errorf("Message(short) = %q", got)
	}
}

// The writer escapes like Text, a rune split across writes included.
func TestWriter(t *testing.T) {
	var b bytes.Buffer
	w := NewWriter(&b)
	in := "ok é\n\x1b[2J\xff\n" + "€" + "\n"
	for i := 0; i < len(in); i++ { // one byte at a time: every rune is split
		if n, err := w.Write([]byte{in[i]}); n != 1 || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	if want := "ok é\n\\x1b[2J\\xff\n€\n"; b.String() != want {
		t.Errorf("wrote %q, want %q", b.String(), want)
	}
	b.Reset()
	w.Write([]byte("\xe2\x82")) // never completed: shown as two bad bytes
	w.Write([]byte("x\n"))
	if want := `\xe2\x82` + "x\n"; b.String() != want {
		t.Errorf("wrote %q, want %q", b.String(), want)
	}
}

// safe reports whether s could reach a terminal: valid UTF-8 with nothing
// but printable runes, new lines and tabs (only printable runes when line).
func safe(s string, line bool) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if (r == '\n' || r == '\t') && !line {
			continue
		}
		if !unicode.IsGraphic(r) {
			return false
		}
	}
	return true
}

// FuzzQuote: whatever the bytes, the result is safe for a terminal,
// escaping is idempotent, printable text is left alone, and Item is
// bounded.
func FuzzQuote(f *testing.F) {
	for _, s := range []string{"", "42", "\"\xff\"", "\x1b[2J", "a\nb\tc\r", "naïve", "\u202e", strings.Repeat("é", 40)} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s := string(b)
		txt := Text(s)
		if !safe(txt, false) {
			t.Fatalf("Text(%q) = %q: not safe", s, txt)
		}
		if Text(txt) != txt {
			t.Fatalf("Text is not idempotent on %q: %q then %q", s, txt, Text(txt))
		}
		if safe(s, false) && txt != s {
			t.Fatalf("Text(%q) = %q changed safe text", s, txt)
		}
		it := Item(b)
		if !safe(it, true) || Text(it) != it {
			t.Fatalf("Item(%q) = %q: not safe", s, it)
		}
		// At most ItemLimit input bytes, each escaped in at most 10 bytes
		// (\U0010ffff), plus the size note.
		if len(it) > ItemLimit*10+32 {
			t.Fatalf("Item(%d bytes) is %d bytes long", len(b), len(it))
		}
		if len(b) <= ItemLimit && strings.Contains(it, "bytes)") && !strings.Contains(s, "bytes)") {
			t.Fatalf("Item(%q) = %q: cut a short item", s, it)
		}
		var out bytes.Buffer
		w := NewWriter(&out)
		half := len(b) / 2
		w.Write(b[:half])
		w.Write(b[half:])
		w.Write([]byte("\n")) // completes or rejects any held rune
		if out.String() != Text(s+"\n") {
			t.Fatalf("writer wrote %q, Text %q", out.String(), Text(s+"\n"))
		}
	})
}
