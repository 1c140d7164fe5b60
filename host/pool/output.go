package pool

import (
	"bytes"
	"encoding/json"
	"io"
	"slices"
	"strings"
	"sync"
)

// tail keeps the last lines a process wrote to its stderr, for crash
// reports. A Go panic's first line is kept even when the stack behind it
// pushes it out of the window.
//
// Once the process serves (see serving), it also forwards the stray lines
// among them (see stray) to forward: the Go SDK writes a plugin's
// os.Stderr there, unbuffered, so that a line written just before the
// process dies reaches the crash report. Before, they are for the start
// error to quote.
type tail struct {
	mu      sync.Mutex
	max     int
	buf     []string
	partial []byte
	panic   string
	forward *lineWriter
	serving bool
}

func newTail(max int, forward *lineWriter) *tail { return &tail{max: max, forward: forward} }

// serve starts the forwarding of stray lines.
func (t *tail) serve() {
	t.mu.Lock()
	t.serving = true
	t.mu.Unlock()
}

func (t *tail) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(b)
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			t.partial = append(t.partial, b...)
			if len(t.partial) > 4096 {
				t.partial = t.partial[:4096]
			}
			break
		}
		line := string(append(t.partial, b[:i]...))
		t.partial = t.partial[:0]
		b = b[i+1:]
		if line == "" {
			continue
		}
		if t.panic == "" && (strings.HasPrefix(line, "panic: ") || strings.HasPrefix(line, "fatal error: ")) {
			t.panic = line
		}
		if t.serving && t.panic == "" && stray(line) {
			t.forward.emit([]byte(line))
		}
		if len(t.buf) == t.max {
			copy(t.buf, t.buf[1:])
			t.buf = t.buf[:t.max-1]
		}
		t.buf = append(t.buf, line)
	}
	return n, nil
}

// stray reports whether a line of a plugin's stderr is something it
// printed rather than a log record. go-plugin logs the others itself
// (hclog's JSON lines, lines with a "[LEVEL]" prefix, and everything from
// a panic on) and the rest only at debug level, which would hide them.
func stray(line string) bool {
	if strings.HasPrefix(line, "{") && json.Valid([]byte(line)) {
		return false
	}
	for _, level := range []string{"[TRACE]", "[DEBUG]", "[INFO]", "[WARN]", "[ERROR]"} {
		if strings.HasPrefix(line, level) {
			return false
		}
	}
	return true
}

// last returns the line that best says why the process ended: a Go
// panic's first line, else the last line it wrote.
func (t *tail) last() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.panic != "":
		return t.panic
	case len(t.partial) > 0:
		return string(t.partial)
	case len(t.buf) > 0:
		return t.buf[len(t.buf)-1]
	}
	return ""
}

// lines returns the kept lines, oldest first.
func (t *tail) lines() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]string, 0, len(t.buf)+2)
	if t.panic != "" && !slices.Contains(t.buf, t.panic) {
		out = append(out, t.panic, "...")
	}
	out = append(out, t.buf...)
	if len(t.partial) > 0 {
		out = append(out, string(t.partial))
	}
	return out
}

// lineWriter forwards what a plugin writes to its own stdout or stderr to
// w, one whole line at a time, each tagged with the worker. Lines of
// different workers never interleave mid-line: every line is one Write
// under one lock shared by every lineWriter in the process. A line longer
// than maxLine is forwarded in pieces of maxLine bytes, each a line of its
// own: what the host holds for a plugin's output is bounded, however much
// it writes without a newline.
type lineWriter struct {
	w       io.Writer
	tag     func() string
	stream  string
	partial []byte
	cut     bool // pieces of the current line were forwarded already
}

// maxLine bounds one forwarded line of a plugin's stray output.
const maxLine = 64 << 10

var outputMu sync.Mutex

func newLineWriter(w io.Writer, tag func() string, stream string) *lineWriter {
	return &lineWriter{w: w, tag: tag, stream: stream}
}

func (l *lineWriter) Write(b []byte) (int, error) {
	n := len(b)
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		seg := b
		if i >= 0 {
			seg = b[:i]
		}
		for len(l.partial)+len(seg) > maxLine {
			k := maxLine - len(l.partial)
			l.emit(append(l.partial, seg[:k]...))
			l.partial, l.cut = l.partial[:0], true
			seg = seg[k:]
		}
		l.partial = append(l.partial, seg...)
		if i < 0 {
			break
		}
		if len(l.partial) > 0 || !l.cut {
			l.emit(l.partial)
		}
		l.partial, l.cut = l.partial[:0], false
		b = b[i+1:]
	}
	return n, nil
}

// flush forwards what is left of a last line without a newline. Write and
// flush are called from one goroutine at a time.
func (l *lineWriter) flush() {
	if len(l.partial) > 0 {
		l.emit(l.partial)
	}
	l.partial, l.cut = l.partial[:0], false
}

func (l *lineWriter) emit(line []byte) {
	msg := make([]byte, 0, len(line)+64)
	msg = append(msg, '[')
	msg = append(msg, l.tag()...)
	msg = append(msg, ' ')
	msg = append(msg, l.stream...)
	msg = append(msg, "] "...)
	msg = append(msg, line...)
	msg = append(msg, '\n')
	outputMu.Lock()
	_, _ = l.w.Write(msg)
	outputMu.Unlock()
}
