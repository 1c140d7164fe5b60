// Package jsonl reads items from and writes results to line-oriented
// streams: JSON Lines in, JSON Lines out, the way the pluginpool CLI and
// pipelines move data. Each input line is one item, passed on as is (a line
// is already a JSON value, and the host never decodes values), or, in
// plain-text mode, encoded as a JSON string.
package jsonl

import (
	"bytes"
	"encoding/json"
	"io"
	"iter"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pluginpool/pluginpool/host/backend"
)

// Reader splits a stream into items, one per non-blank line, remembering
// each item's line number. It reads in large blocks and hands out slices of
// its buffer: an item is valid only until the next one is yielded (the
// pool copies items as it takes them).
type Reader struct {
	r     io.Reader
	text  bool   // plain text: each line becomes a JSON string
	limit int    // largest item; longer lines are cut to limit+1 bytes and flagged
	block int    // read size, and the buffer a line must outgrow to be cut; blockSize but in tests
	skip  []byte // read buffer for the rest of a line over limit

	mu     sync.Mutex
	blanks []int       // for each blank line skipped, the items before it
	long   map[int]int // oversized items: index → the line's real length
	err    error

	// Where reading stopped, so that Items goes on from there when called
	// again (see Rest). Touched only by the goroutine iterating.
	buf     []byte // unread input is buf[start:]
	start   int
	items   int      // items read so far
	pending [][]byte // the rest of the run Items stopped in
	done    bool     // the input ended, or failed
	scratch []byte
	count   atomic.Int64 // items, published once a block and when Items returns
}

// NewReader returns a Reader over r. With text set, every line is taken as
// a plain string and encoded as JSON; otherwise each line must already be a
// JSON value. A line longer than limit bytes and than the read block
// (1 MiB) is not held in memory: the item is cut to limit+1 bytes (so the
// pool rejects it as too large) and Oversize reports the real length.
func NewReader(r io.Reader, text bool, limit int) *Reader {
	return &Reader{r: r, text: text, limit: limit, block: blockSize}
}

const blockSize = 1 << 20

// Items yields the items. Blank lines are skipped (but counted in line
// numbers). A read error ends the sequence; Err reports it. Called again
// after the caller stopped early, it goes on with the next item.
func (r *Reader) Items() iter.Seq[[]byte] {
	return func(yield func([]byte) bool) {
		for len(r.pending) > 0 {
			it := r.pending[0]
			r.pending = r.pending[1:]
			if !yield(it) {
				return
			}
		}
		for run := range r.Runs() {
			for i, it := range run {
				if !yield(it) {
					// The rest of the run stays valid until Runs goes on:
					// the next call yields it first.
					r.pending = append(r.pending[:0], run[i+1:]...)
					return
				}
			}
		}
	}
}

// runMax is the most items a run of Runs holds.
const runMax = 256

// Runs is Items yielding runs of items, up to 256 at a time: every item
// that is read before the Reader would wait for more input, in one run
// (so a slow input holds nothing back). The run and its items are valid
// only until the next is yielded. A caller that handles items in bulk
// (the pipeline, filling a pool's batches) takes them so: a loop over a
// run costs less than an iterator step per item. Runs must not be called
// while items of a run Items stopped in are left (Items yields them).
func (r *Reader) Runs() iter.Seq[[][]byte] {
	return func(yield func([][]byte) bool) {
		if r.done {
			return
		}
		buf, start := r.buf, r.start
		if buf == nil {
			buf = make([]byte, 0, r.block)
		}
		items := r.items // read so far; r.mu is taken only for the rare blank or long line
		run := make([][]byte, 0, runMax)
		// flush yields the run so far, if it has anything: before the
		// buffer its items are in changes, and when it is full.
		flush := func() bool {
			if len(run) == 0 {
				return true
			}
			ok := yield(run)
			if ok {
				run, r.scratch = run[:0], r.scratch[:0]
			}
			return ok
		}
		item := func(line []byte) bool {
			if r.text {
				// Each item of a run has its own part of scratch (an
				// earlier part stays valid if appending moves it).
				n := len(r.scratch)
				r.scratch = appendString(r.scratch, line)
				line = r.scratch[n:]
			}
			items++
			run = append(run, line)
			return len(run) < runMax || flush()
		}
		emit := func(line []byte) bool {
			if len(line) > 0 && line[len(line)-1] == '\r' {
				line = line[:len(line)-1]
			}
			if isBlank(line) {
				r.blank(items)
				return true
			}
			return item(line)
		}
		for {
			for {
				i := bytes.IndexByte(buf[start:], '\n')
				if i < 0 {
					break
				}
				line := buf[start : start+i]
				start += i + 1
				if !r.text && len(line) > 0 && line[0] > ' ' && line[len(line)-1] > ' ' {
					// Not blank, no \r: the common line, without emit's
					// checks (JSON white space is all at or under ' ').
					items++
					if run = append(run, line); len(run) == runMax && !flush() {
						r.save(buf, start, items)
						return
					}
					continue
				}
				if !emit(line) {
					r.save(buf, start, items)
					return
				}
			}
			// The buffer's lines are about to move, or more input to be
			// waited for: what was read goes first.
			if !flush() {
				r.save(buf, start, items)
				return
			}
			n := copy(buf, buf[start:])
			buf, start = buf[:n], 0
			if n == cap(buf) {
				if n > r.limit {
					// Too long to hold: count the rest of the line, then
					// yield a stub the pool rejects. Counting first makes
					// Oversize right by the time the pool's error for the
					// stub is reported (a 100 MB line was reported at
					// whatever size the reader had reached by then).
					rest, ended, size := r.skipLong(buf)
					ok := true
					switch {
					case ended == lineBroken:
						r.done = true
						r.save(buf[:0], 0, items)
						return
					case size < 0: // blank
						r.blank(items)
					case size <= r.limit:
						// Over the limit only by the \r that ends it: the
						// whole line is in buf.
						ok = emit(buf)
					default:
						r.mu.Lock()
						r.long = mapSet(r.long, items, size)
						r.mu.Unlock()
						ok = item(buf[:r.limit+1])
					}
					if ok {
						ok = flush() // before buf is reused
					}
					buf = append(buf[:0], rest...)
					if ended == lineAtEOF {
						r.done = true
					}
					if !ok || r.done {
						r.save(buf, 0, items)
						return
					}
					continue
				}
				buf = append(buf, make([]byte, min(cap(buf), r.limit+1))...)[:n]
			}
			r.count.Store(int64(items))
			m, err := r.r.Read(buf[len(buf):cap(buf)])
			buf = buf[:len(buf)+m]
			if err == io.EOF {
				r.done = true
				if len(buf) > 0 {
					last := buf
					buf = buf[:0]
					if emit(last) {
						flush()
					}
				}
				r.save(buf, 0, items)
				return
			}
			if err != nil {
				r.done = true
				r.fail(err)
				r.save(buf[:0], 0, items)
				return
			}
		}
	}
}

// save keeps where Items stopped reading, for its next call and Count.
// (A closure would move Items' loop variables to the heap.)
func (r *Reader) save(buf []byte, start int, items int) {
	r.buf, r.start, r.items = buf, start, items
	r.count.Store(int64(items))
}

// Count returns how many items the Reader has read (yielded, or left in
// a run Items stopped in). Once Items has run to the end of the input,
// that is every item the input holds. Safe
// to call from any goroutine; while Items runs it lags by up to a block.
func (r *Reader) Count() int { return int(r.count.Load()) }

// Rest reads the rest of the input, counting its items without handing
// them out, and returns Count. It ends at the end of the input or at a
// read error (Err).
func (r *Reader) Rest() int {
	for range r.Items() {
	}
	return r.Count()
}

// AbortWhenIdle calls abort, once, if Count stands still for idle while
// the caller reads on, so that counting the rest of an input that stays
// open (a pipe from tail -f) ends. It returns a function that stops it.
func (r *Reader) AbortWhenIdle(abort func(), idle time.Duration) (stop func()) {
	done := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		tick := time.NewTicker(idle / 10)
		defer tick.Stop()
		last, since := r.Count(), time.Now()
		for {
			select {
			case <-done:
				return
			case now := <-tick.C:
				if n := r.Count(); n != last {
					last, since = n, now
				} else if now.Sub(since) >= idle {
					abort()
					return
				}
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() { close(done) })
		<-exited
	}
}

// How skipLong found the end of a long line.
const (
	lineEnded  = iota // at a newline
	lineAtEOF         // at the end of the input
	lineBroken        // at a read error, which Err reports
)

// skipLong reads to the end of a line too long to hold, whose first bytes
// fill line, without keeping it. It returns the line's length (less a
// final \r, as an item would be), or -1 if it is all white space, and
// what was read after its newline.
func (r *Reader) skipLong(line []byte) (rest []byte, ended, size int) {
	size = len(line)
	blank, cr := isBlank(line), line[len(line)-1] == '\r'
	if r.skip == nil {
		r.skip = make([]byte, r.block)
	}
	for ended = -1; ended < 0; {
		m, err := r.r.Read(r.skip)
		chunk := r.skip[:m]
		if k := bytes.IndexByte(chunk, '\n'); k >= 0 {
			chunk, rest = chunk[:k], chunk[k+1:]
			ended = lineEnded
		} else if err == io.EOF {
			ended = lineAtEOF
		} else if err != nil {
			r.fail(err)
			return nil, lineBroken, 0
		}
		if len(chunk) > 0 {
			size += len(chunk)
			blank = blank && isBlank(chunk)
			cr = chunk[len(chunk)-1] == '\r'
		}
	}
	switch {
	case blank:
		size = -1
	case cr:
		size--
	}
	return rest, ended, size
}

// blank records a blank line after the first i items.
func (r *Reader) blank(i int) {
	r.mu.Lock()
	r.blanks = append(r.blanks, i)
	r.mu.Unlock()
}

func (r *Reader) fail(err error) {
	r.mu.Lock()
	r.err = err
	r.mu.Unlock()
}

// isBlank reports whether line holds only JSON white space.
func isBlank(line []byte) bool {
	for _, c := range line {
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			return false
		}
	}
	return true
}

func mapSet(m map[int]int, k, v int) map[int]int {
	if m == nil {
		m = make(map[int]int)
	}
	m[k] = v
	return m
}

// Line returns the 1-based input line of item i.
func (r *Reader) Line(i int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	// blanks is sorted: count blank lines with at most i items before them.
	return i + 1 + sort.SearchInts(r.blanks, i+1)
}

// Oversize returns the real length of item i's line if it was cut for
// being over the limit.
func (r *Reader) Oversize(i int) (int, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n, ok := r.long[i]
	return n, ok
}

// Err returns the read error that ended Items, if any.
func (r *Reader) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// appendString appends s as a JSON string.
func appendString(dst, s []byte) []byte {
	for _, c := range s {
		if c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			b, _ := json.Marshal(string(s))
			return append(dst, b...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

// Writer writes results as lines: first the lines a task printed, then its
// value, if it has one. Failed results are not written; the caller reports
// them. Both are written byte for byte as the plugin sent them: a printed
// line is text the plugin printed (not JSON, and not necessarily UTF-8),
// and the output is data, so nothing is escaped or replaced here; showing
// it on a terminal safely is the caller's business (the CLI escapes
// stdout when it is one). It buffers (256 KiB) for throughput; FlushEvery
// makes a slow or stalled stream show its results anyway. Its methods are
// safe for concurrent use.
type Writer struct {
	mu    sync.Mutex
	w     io.Writer
	buf   []byte // what is buffered; its capacity is the buffer's size
	err   error  // the first write error: sticky
	dirty bool
	stop  chan struct{} // closed by Close; nil without FlushEvery
	done  chan struct{} // closed when the flusher has exited
}

// NewWriter returns a Writer with a large buffer over w. Call Close (or
// Flush) at the end.
func NewWriter(w io.Writer) *Writer {
	return &Writer{w: w, buf: make([]byte, 0, 256<<10)}
}

// FlushEvery starts a goroutine that writes out buffered results every d,
// so `tail -f log | pluginpool map ...` shows results as they come rather
// than when 256 KiB have piled up. Close stops it. Call it at most once.
func (w *Writer) FlushEvery(d time.Duration) {
	w.stop, w.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(w.done)
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-t.C:
				w.mu.Lock()
				if w.dirty {
					// An error sticks: the next Write returns it.
					w.flush()
					w.dirty = false
				}
				w.mu.Unlock()
			}
		}
	}()
}

// Write writes one result. Errors are sticky: after one, every Write and
// Flush returns it.
func (w *Writer) Write(r backend.Result) error {
	w.mu.Lock()
	w.dirty = true
	w.result(&r)
	err := w.err
	w.mu.Unlock()
	return err
}

// WriteAll writes results, in order, as Write writes each: one lock for
// them all.
func (w *Writer) WriteAll(rs []backend.Result) error {
	w.mu.Lock()
	w.dirty = true
	for k := range rs {
		w.result(&rs[k])
	}
	err := w.err
	w.mu.Unlock()
	return err
}

// result buffers r's lines and value. Called with w.mu held.
func (w *Writer) result(r *backend.Result) {
	if len(r.Output) == 0 && r.Value != nil && len(r.Value) < cap(w.buf)-len(w.buf) {
		// The common case, in the buffer's own memory: bufio's Write and
		// WriteByte and a deferred unlock were ~150 instructions of the
		// CLI's ~900 per item in a 1M-line map.
		w.buf = append(append(w.buf, r.Value...), '\n')
		return
	}
	for _, l := range r.Output {
		w.line([]byte(l))
	}
	if r.Value != nil {
		w.line(r.Value)
	}
}

// line buffers b and a newline, writing out the buffer first when they
// do not fit, and b directly when it is larger than the buffer. Called
// with w.mu held.
func (w *Writer) line(b []byte) {
	if len(b) >= cap(w.buf)-len(w.buf) {
		w.flush()
		if len(b) >= cap(w.buf) {
			w.write(b)
			w.buf = append(w.buf, '\n')
			return
		}
	}
	w.buf = append(append(w.buf, b...), '\n')
}

// flush writes out the buffer. Called with w.mu held.
func (w *Writer) flush() {
	if len(w.buf) > 0 {
		w.write(w.buf)
		w.buf = w.buf[:0]
	}
}

// write writes b unless an earlier write failed. Called with w.mu held.
func (w *Writer) write(b []byte) {
	if w.err != nil {
		return
	}
	n, err := w.w.Write(b)
	if err == nil && n < len(b) {
		err = io.ErrShortWrite
	}
	w.err = err
}

// Flush writes out what is buffered.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.dirty = false
	w.flush()
	return w.err
}

// Close stops the flusher started by FlushEvery, if any, and flushes.
// Safe to call more than once.
func (w *Writer) Close() error {
	if w.stop != nil {
		select {
		case <-w.stop:
		default:
			close(w.stop)
		}
		<-w.done
	}
	return w.Flush()
}
