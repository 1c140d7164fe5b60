package jsonv

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestOneLine(t *testing.T) {
	for _, v := range []string{
		"0", "-1", "12.5e-3", `"plain"`, `"é"`, `"esc\"aped\n"`, "true", "false", "null",
		`{"a":[1,2]}`, " [1, 2] ", `{"s":"é"}`,
	} {
		if !OneLine([]byte(v)) {
			t.Errorf("OneLine(%q) = false; want true", v)
		}
	}
	for _, v := range []string{
		"", "NaN", "Infinity", "-", "01", "1.", "1e", "1 2", `"open`, `"a"b"`, "\"tab\there\"", "\"\xff\"",
		"{\n\"a\": 1\n}", "[1,\r2]", "tru", "nul", "{", `{"a":1}}`, "[\"\xff\"]", "'a'",
	} {
		if OneLine([]byte(v)) {
			t.Errorf("OneLine(%q) = true; want false", v)
		}
	}
}

// FuzzOneLine: OneLine agrees with encoding/json, UTF-8 validity and the
// no-line-break rule on every input.
func FuzzOneLine(f *testing.F) {
	for _, s := range []string{"1", `"a"`, "{}", "[1,\n2]", "-0.5e+3", `"\u00e9"`, "\"\xc3\""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		want := len(v) > 0 && json.Valid(v) && !strings.ContainsAny(string(v), "\r\n") && utfValid(v)
		if got := OneLine(v); got != want {
			t.Errorf("OneLine(%q) = %v; want %v", v, got, want)
		}
	})
}

func utfValid(v []byte) bool { return strings.ToValidUTF8(string(v), "\x00") == string(v) }

func BenchmarkOneLineInt(b *testing.B) {
	v := []byte("123456")
	for b.Loop() {
		OneLine(v)
	}
}
