// Package testkit holds what tests in several packages need alike: a
// buffer several goroutines write to, and files that count events across
// the processes of a test (a fixture plugin and its restarts).
package testkit

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"sync"
)

// Buffer is a bytes.Buffer safe for concurrent use: a pool's log and its
// plugins' stray output are written from several goroutines.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what was written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// MarkerOnce reports whether this is the first time any process saw key in
// dir: it creates dir/key, which only one process can.
func MarkerOnce(dir, key string) bool {
	f, err := os.OpenFile(filepath.Join(dir, key), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return false
	}
	f.Close()
	return true
}

// Count appends one byte to dir/name (appends of one byte are atomic), so
// that a test can count events across processes with Counted.
func Count(dir, name string) {
	f, err := os.OpenFile(filepath.Join(dir, name), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err == nil {
		f.WriteString("x")
		f.Close()
	}
}

// Counted returns how many times Count(dir, name) ran: 0 if never, -1 if
// the file cannot be read.
func Counted(dir, name string) int {
	b, err := os.ReadFile(filepath.Join(dir, name))
	switch {
	case errors.Is(err, os.ErrNotExist):
		return 0
	case err != nil:
		return -1
	}
	return len(b)
}
