package main

import (
	"os"
	"runtime"
	"slices"
)

func sorted(s []string) []string {
	slices.Sort(s)
	return s
}

// isTerminal reports whether f is a character device (a terminal).
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func defaultCores() int { return runtime.NumCPU() }
