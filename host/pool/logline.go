package pool

import (
	"bytes"
	"encoding/json"
	"io"
)

// logLines hands a plugin's stderr to go-plugin line by line, mending the
// hclog JSON records whose "@message", "@level" or "@timestamp" is not a
// string: go-plugin v1.8.0's parseJSON asserts their types unchecked, and
// one line such as {"@message": 5} from any plugin crashed the whole host
// (interface conversion panic in its stderr goroutine). The value is put
// back as its JSON text, a string; every other line passes as it is.
type logLines struct {
	r    io.ReadCloser
	line []byte // the line being read
	out  []byte // lines ready for Read
	long bool   // inside a line over maxLogLine: passed through as it comes
	err  error
	buf  [32 << 10]byte
}

// maxLogLine is go-plugin's PluginLogBufferSize default: it never parses
// a longer line as a record, so such lines pass through unbuffered.
const maxLogLine = 64 << 10

func newLogLines(r io.ReadCloser) *logLines { return &logLines{r: r} }

func (l *logLines) Read(p []byte) (int, error) {
	for len(l.out) == 0 {
		if l.err != nil {
			return 0, l.err
		}
		n, err := l.r.Read(l.buf[:])
		l.take(l.buf[:n])
		if err != nil {
			l.out = append(l.out, l.line...)
			l.line = nil
			l.err = err
		}
	}
	n := copy(p, l.out)
	l.out = l.out[n:]
	return n, nil
}

func (l *logLines) Close() error { return l.r.Close() }

// take splits b into lines.
func (l *logLines) take(b []byte) {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		chunk := b
		if i >= 0 {
			chunk = b[:i+1]
		}
		b = b[len(chunk):]
		if l.long {
			l.out = append(l.out, chunk...)
			l.long = i < 0
			continue
		}
		l.line = append(l.line, chunk...)
		switch {
		case i >= 0:
			l.out = append(l.out, mendRecord(l.line[:len(l.line)-1])...)
			l.out = append(l.out, '\n')
			l.line = l.line[:0]
		case len(l.line) > maxLogLine:
			l.out = append(l.out, l.line...)
			l.line = l.line[:0]
			l.long = true
		}
	}
}

// recordKeys are the fields go-plugin reads as strings without checking.
var recordKeys = [...]string{"@message", "@level", "@timestamp"}

// mendRecord returns line with any of recordKeys that is not a string
// turned into one, or line itself.
func mendRecord(line []byte) []byte {
	if len(line) == 0 || line[0] != '{' || !bytes.Contains(line, []byte(`"@`)) {
		return line
	}
	var m map[string]any
	if json.Unmarshal(line, &m) != nil {
		return line
	}
	changed := false
	for _, k := range recordKeys {
		if v, ok := m[k]; ok {
			if _, isString := v.(string); !isString {
				text, _ := json.Marshal(v)
				m[k] = string(text)
				changed = true
			}
		}
	}
	if !changed {
		return line
	}
	mended, err := json.Marshal(m)
	if err != nil {
		return line
	}
	return mended
}
