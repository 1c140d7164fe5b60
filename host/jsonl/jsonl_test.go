package jsonl

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/pluginpool/pluginpool/host/pool"
	"github.com/pluginpool/pluginpool/internal/testkit"
)

// read collects a Reader's items and their line numbers.
func read(t *testing.T, r *Reader) (items []string, lines []int) {
	t.Helper()
	for it := range r.Items() {
		items = append(items, string(it)) // items are only valid until the next one
	}
	for i := range items {
		lines = append(lines, r.Line(i))
	}
	return items, lines
}

func TestReaderLines(t *testing.T) {
	in := "1\n\n  \n\"two\"\r\n{\"a\": 3}\n\n4" // blank lines, CRLF, no final newline
	for name, src := range map[string]io.Reader{
		"whole":        strings.NewReader(in),
		"byte by byte": iotest.OneByteReader(strings.NewReader(in)),
	} {
		items, lines := read(t, NewReader(src, false, 1<<20))
		want := []string{"1", `"two"`, `{"a": 3}`, "4"}
		if strings.Join(items, "|") != strings.Join(want, "|") {
			t.Errorf("%s: items %q, want %q", name, items, want)
		}
		if got := lines; len(got) != 4 || got[0] != 1 || got[1] != 4 || got[2] != 5 || got[3] != 7 {
			t.Errorf("%s: lines %v, want [1 4 5 7]", name, got)
		}
	}
}

func TestReaderText(t *testing.T) {
	items, _ := read(t, NewReader(strings.NewReader("hello\nsay \"hi\"\nnaïve\n"), true, 1<<20))
	want := []string{`"hello"`, `"say \"hi\""`, `"naïve"`}
	if strings.Join(items, "|") != strings.Join(want, "|") {
		t.Errorf("items %q, want %q", items, want)
	}
}

// A line over the limit and the read block is never held whole: the item
// is cut to limit+1 bytes (so the pool rejects it) and Oversize reports
// the real length. A shorter one is passed whole, for the pool to reject.
func TestReaderOversize(t *testing.T) {
	long := strings.Repeat("7", 3*blockSize+5)
	r := NewReader(strings.NewReader("1\n"+long+"\n3\n"), false, 100)
	items, lines := read(t, r)
	if len(items) != 3 || items[0] != "1" || len(items[1]) != 101 || items[2] != "3" {
		t.Fatalf("items: %d, lengths %d", len(items), len(items[1]))
	}
	if n, ok := r.Oversize(1); !ok || n != len(long) {
		t.Errorf("Oversize(1) = %d, %v; want %d, true", n, ok, len(long))
	}
	if _, ok := r.Oversize(0); ok {
		t.Error("Oversize(0) reports a short line")
	}
	if lines[2] != 3 {
		t.Errorf("line of the item after the long one: %d, want 3", lines[2])
	}
}

func TestReaderError(t *testing.T) {
	boom := errors.New("disk on fire")
	r := NewReader(io.MultiReader(strings.NewReader("1\n2\n"), iotest.ErrReader(boom)), false, 100)
	items, _ := read(t, r)
	if len(items) != 2 || !errors.Is(r.Err(), boom) {
		t.Errorf("items %q, Err %v; want 2 items and the read error", items, r.Err())
	}
}

func TestWriter(t *testing.T) {
	var b bytes.Buffer
	w := NewWriter(&b)
	w.Write(pool.Result{Value: []byte("2")})
	w.Write(pool.Result{Output: []string{"Number: 1", "more"}})
	w.Write(pool.Result{Output: []string{"x"}, Value: []byte(`"y"`)})
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if want := "2\nNumber: 1\nmore\nx\n\"y\"\n"; b.String() != want {
		t.Errorf("wrote %q, want %q", b.String(), want)
	}
}

// With FlushEvery, a result shows up without a Flush: a stalled stream
// (tail -f) still shows what it has.
func TestWriterFlushEvery(t *testing.T) {
	var b testkit.Buffer // the flusher goroutine writes too
	w := NewWriter(&b)
	w.FlushEvery(5 * time.Millisecond)
	w.Write(pool.Result{Value: []byte("42")})
	deadline := time.Now().Add(10 * time.Second)
	for b.String() != "42\n" {
		if time.Now().After(deadline) {
			t.Fatal("the result was never flushed")
		}
		time.Sleep(time.Millisecond)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil { // twice is fine
		t.Fatal(err)
	}
}

// Items goes on where a loop that stopped early left it, and Rest counts
// what is left: every item is counted once, blank lines and long lines
// included, across blocks.
func TestReaderResumeAndRest(t *testing.T) {
	var in strings.Builder
	for i := range 300_000 { // several read blocks
		if i%1000 == 0 {
			in.WriteString("\n") // blank
		}
		fmt.Fprintf(&in, "%d\n", i)
	}
	in.WriteString(strings.Repeat("7", 3*blockSize)) // long, no final newline
	r := NewReader(iotest.HalfReader(strings.NewReader(in.String())), false, 100)
	n := 0
	for it := range r.Items() {
		if string(it) != strconv.Itoa(n) {
			t.Fatalf("item %d = %q", n, it)
		}
		if n++; n == 123_457 {
			break
		}
	}
	for it := range r.Items() { // goes on
		if string(it) != strconv.Itoa(n) {
			t.Fatalf("after resuming: item %d = %q", n, it)
		}
		if n++; n == 200_000 {
			break
		}
	}
	if got := r.Rest(); got != 300_001 || r.Count() != 300_001 || r.Err() != nil {
		t.Errorf("Rest = %d, Count = %d, Err = %v; want 300001 items", got, r.Count(), r.Err())
	}
	if l := r.Line(299_999); l != 300_000+300 {
		t.Errorf("line of the last number = %d; want %d", l, 300_300)
	}
	if r.Rest() != 300_001 {
		t.Error("a second Rest counted again")
	}
}

// AbortWhenIdle lets go of an input that stays open without data.
func TestAbortWhenIdle(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	go pw.Write([]byte("1\n2\n")) // then nothing, and no EOF
	r := NewReader(pr, false, 100)
	stop := r.AbortWhenIdle(func() { pr.CloseWithError(errors.New("let go")) }, 100*time.Millisecond)
	defer stop()
	done := make(chan int)
	go func() { done <- r.Rest() }()
	select {
	case n := <-done:
		if n != 2 || r.Err() == nil {
			t.Errorf("Rest = %d, Err = %v; want 2 and the abort's error", n, r.Err())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Rest did not return after the input went idle")
	}
}

// The real length of a cut line is known by the time its stub is
// yielded: the pool rejects the stub at once, and the CLI reports it
// while the reader would otherwise still be skipping the rest (a 100 MB
// line was reported as 91 MB).
func TestReaderOversizeKnownWhenYielded(t *testing.T) {
	long := strings.Repeat("7", 5*blockSize+3)
	for _, text := range []bool{false, true} {
		r := NewReader(iotest.HalfReader(strings.NewReader("1\n"+long+"\r\n  \n3")), text, 100)
		i := 0
		for it := range r.Items() {
			n, cut := r.Oversize(i)
			switch {
			case i == 1 && (!cut || n != len(long) || len(it) < 101):
				t.Errorf("text %v: at the stub (%d bytes), Oversize = %d, %v; want %d, true", text, len(it), n, cut, len(long))
			case i != 1 && cut:
				t.Errorf("text %v: item %d reported oversize", text, i)
			}
			i++
		}
		if i != 3 || r.Line(2) != 4 {
			t.Errorf("text %v: %d items, item 2 on line %d; want 3 items, line 4", text, i, r.Line(2))
		}
	}
}

// A long line of white space is blank, skipped like a short one; one that
// only starts with white space is an item.
func TestReaderLongBlankLine(t *testing.T) {
	spaces := strings.Repeat(" ", 3*blockSize)
	r := NewReader(strings.NewReader("1\n"+spaces+"\n"+spaces+"x\n3\n"), false, 100)
	items, lines := read(t, r)
	if len(items) != 3 || items[0] != "1" || len(items[1]) != 101 || items[2] != "3" || lines[1] != 3 || lines[2] != 4 {
		t.Fatalf("items %d (lengths %d), lines %v; want 1, a stub, 3 on lines 1, 3, 4", len(items), len(items[1]), lines)
	}
	if n, ok := r.Oversize(1); !ok || n != len(spaces)+1 {
		t.Errorf("Oversize(1) = %d, %v; want %d", n, ok, len(spaces)+1)
	}
}

// chunkReader returns at most n bytes per Read.
type chunkReader struct {
	r io.Reader
	n int
}

func (c chunkReader) Read(p []byte) (int, error) { return c.r.Read(p[:min(len(p), c.n)]) }

// FuzzReader splits arbitrary input, read in arbitrary chunks, with a
// small read block so that long lines are cut, and compares with the
// plain reading of the format: one item per line, a trailing \r dropped,
// blank lines skipped but counted. Each item is its line (or, past the
// limit, a stub over the limit whose Oversize is the line's true length),
// on its line number.
func FuzzReader(f *testing.F) {
	for _, s := range []string{"1\n2\n3\n", "1\r\n\n  \n\"x\"", "\n\n\n", "", "7777777777777777777777\n1\n",
		"     \t    \t    x\n", "\"a\\\"b\"\r\n", strings.Repeat("8", 40) + "\r\n" + strings.Repeat(" ", 40) + "\n1"} {
		f.Add([]byte(s), uint8(10), uint8(8), uint8(3), false)
	}
	f.Add([]byte("naïve\n\xff\x00\x1b\nsay \"hi\"\n"), uint8(10), uint8(8), uint8(1), true)
	f.Fuzz(func(t *testing.T, data []byte, limit, block, chunk uint8, text bool) {
		lim, blk := int(limit)+1, int(block)%64+2
		r := NewReader(chunkReader{bytes.NewReader(data), int(chunk) + 1}, text, lim)
		r.block = blk
		// Stopped every few items and resumed: each call goes on from
		// where the last stopped, within a run of Runs or not.
		var items []string
		for every := int(chunk)%7 + 1; ; {
			n := 0
			for it := range r.Items() {
				items = append(items, string(it))
				if n++; n == every {
					break
				}
			}
			if n < every {
				break
			}
		}
		if r.Err() != nil {
			t.Fatalf("Err = %v", r.Err())
		}
		var want []string
		var wantLines []int
		for n, line := range strings.Split(string(data), "\n") {
			line = strings.TrimSuffix(line, "\r")
			if strings.Trim(line, " \t\r\n") == "" {
				continue
			}
			want = append(want, line)
			wantLines = append(wantLines, n+1)
		}
		if len(items) != len(want) {
			t.Fatalf("%d items, want %d: %q", len(items), len(want), want)
		}
		for i, line := range want {
			if got := r.Line(i); got != wantLines[i] {
				t.Fatalf("item %d on line %d, want %d", i, got, wantLines[i])
			}
			if n, cut := r.Oversize(i); cut {
				if n != len(line) || len(line) <= lim || len(items[i]) <= lim {
					t.Fatalf("item %d (line of %d bytes, limit %d): cut to %d bytes, Oversize %d", i, len(line), lim, len(items[i]), n)
				}
				continue
			}
			if !text {
				if items[i] != line {
					t.Fatalf("item %d = %q, want %q", i, items[i], line)
				}
				continue
			}
			var got, exp string
			enc, _ := json.Marshal(line)
			if json.Unmarshal([]byte(items[i]), &got) != nil || json.Unmarshal(enc, &exp) != nil || got != exp {
				t.Fatalf("item %d = %s, want the JSON string %s", i, items[i], enc)
			}
		}
	})
}

// Values and lines larger than the buffer pass through whole and in
// order; a write error sticks: every later Write and Flush returns it.
func TestWriterLargeAndErrors(t *testing.T) {
	var b bytes.Buffer
	w := NewWriter(&b)
	big := bytes.Repeat([]byte("7"), 600<<10)
	w.Write(pool.Result{Value: []byte("1")})
	w.Write(pool.Result{Value: big})
	w.Write(pool.Result{Output: []string{string(big[:300<<10]), "x"}, Value: []byte("2")})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	want := "1\n" + string(big) + "\n" + string(big[:300<<10]) + "\nx\n2\n"
	if b.String() != want {
		t.Errorf("wrote %d bytes, want %d", b.Len(), len(want))
	}

	boom := errors.New("disk full")
	w = NewWriter(failingWriter{boom})
	if err := w.Write(pool.Result{Value: big}); !errors.Is(err, boom) {
		t.Errorf("Write = %v, want %v", err, boom)
	}
	if err := w.Write(pool.Result{Value: []byte("1")}); !errors.Is(err, boom) {
		t.Errorf("Write after a failure = %v, want %v", err, boom)
	}
	if err := w.Flush(); !errors.Is(err, boom) {
		t.Errorf("Flush after a failure = %v, want %v", err, boom)
	}
}

type failingWriter struct{ err error }

func (f failingWriter) Write([]byte) (int, error) { return 0, f.err }
