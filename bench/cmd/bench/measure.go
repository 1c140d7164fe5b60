package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// spread describes samples for a note: "median 91.2 ms, 88.0–97.1 over 5 runs".
func spread(xs []float64, unit string) string {
	if len(xs) == 0 {
		return "no runs"
	}
	return fmt.Sprintf("median %s, range %s–%s over %d runs", format(median(xs), unit),
		format(slices.Min(xs), unit), format(slices.Max(xs), unit), len(xs))
}

// proc is one process to run and time.
type proc struct {
	path   string
	args   []string
	dir    string
	stdin  string // file to read stdin from; "" for /dev/null
	stdout string // file to write stdout to; "" to capture it in out
}

// result is what a timed run of a proc gave.
type result struct {
	wall   time.Duration // from Start to the end of Wait
	cpu    time.Duration // user+system CPU of the process and its waited-for children
	out    []byte        // stdout, when not written to a file
	maxRSS int64         // bytes: wait4's ru_maxrss (the process, or a waited-for child if larger)
}

// run runs p once and times it from just before the fork to the return of
// wait: the whole process, as a shell's `time` would see it.
func (p proc) run(ctx context.Context) (result, error) {
	cmd := exec.CommandContext(ctx, p.path, p.args...)
	cmd.Dir = p.dir
	var stdout bytes.Buffer
	stderr := &tailBuffer{max: 2048}
	cmd.Stderr = stderr
	if p.stdin != "" {
		f, err := os.Open(p.stdin)
		if err != nil {
			return result{}, err
		}
		defer f.Close()
		cmd.Stdin = f
	}
	if p.stdout != "" {
		f, err := os.Create(p.stdout)
		if err != nil {
			return result{}, err
		}
		defer f.Close()
		cmd.Stdout = f
	} else {
		cmd.Stdout = &stdout
	}
	t0 := time.Now()
	err := cmd.Run()
	wall := time.Since(t0)
	if err != nil {
		return result{}, fmt.Errorf("%s %s: %v%s", shortName(p.path), strings.Join(p.args, " "), err, stderr.String())
	}
	ps := cmd.ProcessState
	return result{wall: wall, cpu: ps.UserTime() + ps.SystemTime(), out: stdout.Bytes(), maxRSS: maxRSS(ps)}, nil
}

func maxRSS(ps *os.ProcessState) int64 {
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
		return ru.Maxrss * 1024 // KiB on Linux
	}
	return 0
}

func shortName(path string) string {
	if i := strings.LastIndex(path, "/bin/"); i >= 0 {
		return path[i+1:]
	}
	return path
}

// tailBuffer keeps the last max bytes written: a failing run's stderr.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.b) == 0 {
		return ""
	}
	return "; stderr: " + strings.TrimSpace(string(t.b))
}

// writeInts writes the JSON Lines input: the integers 0..n-1, one a line.
func writeInts(path string, n int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	if err := genInts(w, n); err != nil {
		f.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func genInts(w *bufio.Writer, n int) error {
	for i := range n {
		w.Write(strconv.AppendInt(w.AvailableBuffer(), int64(i), 10))
		if err := w.WriteByte('\n'); err != nil {
			return err
		}
	}
	return nil
}

// verifyDoubled checks that r holds exactly n lines and that line k is a
// JSON number equal to 2k: a broken run is never reported as a fast one.
func verifyDoubled(r io.Reader, n int) error {
	br := bufio.NewReaderSize(r, 1<<20)
	k := 0
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			if k >= n {
				return fmt.Errorf("more than %d output lines", n)
			}
			if !isDouble(bytes.TrimSpace(line), k) {
				return fmt.Errorf("output line %d is %q, want %d", k+1, truncate(line), 2*k)
			}
			k++
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	if k != n {
		return fmt.Errorf("%d output lines, want %d", k, n)
	}
	return nil
}

func verifyFile(path string, n int) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return verifyDoubled(f, n)
}

// isDouble reports whether the JSON number v equals 2k.
func isDouble(v []byte, k int) bool {
	if i, err := strconv.ParseInt(string(v), 10, 64); err == nil {
		return i == 2*int64(k)
	}
	f, err := strconv.ParseFloat(string(v), 64)
	return err == nil && f == 2*float64(k)
}

func truncate(b []byte) string {
	b = bytes.TrimSpace(b)
	if len(b) > 60 {
		return string(b[:57]) + "..."
	}
	return string(b)
}
