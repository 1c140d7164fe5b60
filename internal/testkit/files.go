package testkit

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// WriteFile writes text to dir/name and returns its path.
func WriteFile(t testing.TB, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// DirNames lists the names in dir, sorted.
func DirNames(t testing.TB, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// Numbers returns the lines from..to, one number a line: JSON Lines input.
func Numbers(from, to int) string {
	var b []byte
	for i := from; i <= to; i++ {
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, '\n')
	}
	return string(b)
}

// FailingWriter accepts its first N bytes, then fails every write with
// Err: a full disk, a closed pipe.
type FailingWriter struct {
	N   int
	Err error
}

func (w *FailingWriter) Write(p []byte) (int, error) {
	if len(p) <= w.N {
		w.N -= len(p)
		return len(p), nil
	}
	k := w.N
	w.N = 0
	return k, w.Err
}
