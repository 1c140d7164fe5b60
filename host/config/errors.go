package config

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Sentinel errors. Callers match them with errors.Is; the messages carry
// the details.
var (
	// ErrInvalid: pool.toml has a problem. Every problem is a *Error that
	// names the file, line and key; fix the key and load again.
	ErrInvalid = errors.New("invalid config")
	// ErrUnknownPlugin: a plugin name has no [plugins.NAME] table. Add one,
	// or fix the name (the message suggests the closest one).
	ErrUnknownPlugin = errors.New("unknown plugin")
	// ErrUnknownPipeline: a pipeline name has no [pipelines.NAME] table.
	ErrUnknownPipeline = errors.New("unknown pipeline")
	// ErrNoPipeline: no pipeline was named and the file has none, or has
	// several and none is marked default = true. Name one.
	ErrNoPipeline = errors.New("no pipeline to run")
)

// Error is one problem in a config file, at a line and key. It matches
// ErrInvalid with errors.Is, and also whatever Err matches (for example
// fs.ErrNotExist for a missing plugin executable found by Check).
//
// Its message reads like a compiler's:
//
//	pool.toml:12: plugins.double.workers: must be >= 0, got -1
type Error struct {
	File string // the config file's base name, e.g. "pool.toml"
	Line int    // 1-based; 0 when unknown
	Col  int    // 1-based; set for TOML syntax errors only
	Key  string // dotted key, e.g. "plugins.double.workers" or "pipelines.demo.stages[1]"; may be empty
	Msg  string // what is wrong and, where it helps, what to write instead
	Err  error  // the underlying cause, if any
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		if b.Len() > 0 {
			b.WriteByte(':')
		}
		b.WriteString(strconv.Itoa(e.Line))
		if e.Col > 0 {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(e.Col))
		}
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Is reports whether target is ErrInvalid.
func (e *Error) Is(target error) bool { return target == ErrInvalid }

// Unwrap returns the underlying cause, or nil.
func (e *Error) Unwrap() error { return e.Err }

// joinSorted sorts errs by line, then key, so the report reads top to
// bottom whatever order maps were walked in, and joins them.
func joinSorted(errs []error) error {
	sort.SliceStable(errs, func(i, j int) bool {
		a, aok := errs[i].(*Error)
		b, bok := errs[j].(*Error)
		if !aok || !bok {
			return aok && !bok
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Col != b.Col {
			return a.Col < b.Col
		}
		if a.Key != b.Key {
			return a.Key < b.Key
		}
		return a.Msg < b.Msg
	})
	return errors.Join(errs...)
}

// didYouMean returns ` (did you mean "x"?)` for the candidate closest to s
// by edit distance, or "" when none is close enough to be a likely typo.
func didYouMean(s string, candidates []string) string {
	if c := closest(s, candidates); c != "" {
		return fmt.Sprintf(" (did you mean %q?)", c)
	}
	return ""
}

// closest returns the candidate nearest to s, or "" when the nearest is
// further than a typo away: 1 edit for names of up to 3 letters, else
// max(2, len/3).
func closest(s string, candidates []string) string {
	best, bestD := "", -1
	ls := strings.ToLower(s)
	for _, c := range candidates {
		d := editDistance(ls, strings.ToLower(c))
		if bestD < 0 || d < bestD || (d == bestD && c < best) {
			best, bestD = c, d
		}
	}
	limit := 1
	if len(s) > 3 {
		limit = max(2, len(s)/3)
	}
	if bestD < 0 || bestD > limit {
		return ""
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
