// Command floor is the no-IPC floor of workload W1: one process that reads
// JSON Lines of numbers on stdin, doubles each and writes one per line to
// stdout, with nothing between reading and writing. Whatever pluginpool
// spends above this is the price of its processes, IPC and bookkeeping.
//
// It handles what the double plugin handles: integers on a fast path,
// other JSON numbers through float64 (formatted as encoding/json would).
package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
)

func main() {
	if err := run(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}

func run(r io.Reader, w io.Writer) error {
	in := bufio.NewReaderSize(r, 1<<20)
	out := bufio.NewWriterSize(w, 1<<20)
	for n := 1; ; n++ {
		line, err := in.ReadSlice('\n')
		if err == io.EOF && len(line) == 0 {
			break
		}
		if err != nil && err != io.EOF {
			return err
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		if i, perr := strconv.ParseInt(string(line), 10, 64); perr == nil && i > -1<<62 && i < 1<<62 {
			out.Write(strconv.AppendInt(out.AvailableBuffer(), 2*i, 10))
		} else if f, perr := strconv.ParseFloat(string(line), 64); perr == nil {
			out.Write(strconv.AppendFloat(out.AvailableBuffer(), 2*f, 'g', -1, 64))
		} else {
			return fmt.Errorf("line %d: not a number: %q", n, line)
		}
		out.WriteByte('\n')
		if err == io.EOF {
			break
		}
	}
	return out.Flush()
}
