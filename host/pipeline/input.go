package pipeline

import (
	"encoding/json"
	"fmt"
	"iter"
	"slices"
	"time"

	"github.com/pluginpool/pluginpool/host/jsonl"
	"github.com/pluginpool/pluginpool/internal/quote"
)

// source is where the first stage's items come from: an input read line
// by line, or a list of arguments (Spec.Args).
type source interface {
	// Items yields the items; read errors end it (Err).
	Items() iter.Seq[[]byte]
	// Runs yields the same items in runs (see jsonl.Reader.Runs).
	Runs() iter.Seq[[][]byte]
	// Rest reads the rest, counting its items, and returns them all.
	Rest() int
	Err() error
	// Oversize returns the real length of item i if it was cut for being
	// over the limit.
	Oversize(i int) (int, bool)
	// AbortWhenIdle calls abort if reading stands still for idle (see
	// jsonl.Reader.AbortWhenIdle).
	AbortWhenIdle(abort func(), idle time.Duration) (stop func())
	// at says where item i came from.
	at(i int) position
}

// position is where an item came from: its line in the input, or its
// argument.
type position struct {
	index int    // 0-based among the items
	line  int    // 1-based input line; 0 for an argument
	arg   string // the argument, when line is 0
}

// String reads "line 7" or, for an argument, "item 2 (x)", the argument
// quoted safely for a terminal.
func (p position) String() string {
	if p.line > 0 {
		return fmt.Sprintf("line %d", p.line)
	}
	return fmt.Sprintf("item %d (%s)", p.index+1, quote.Item([]byte(p.arg)))
}

// lines is an input read line by line.
type lines struct{ *jsonl.Reader }

func (l lines) at(i int) position { return position{index: i, line: l.Line(i)} }

// args are items given as arguments.
type args struct {
	list  []string
	items [][]byte
}

func newArgs(list []string) *args {
	a := &args{list: list, items: make([][]byte, len(list))}
	for i, s := range list {
		a.items[i] = ArgItem(s)
	}
	return a
}

// ArgItem is the item an argument stands for (Spec.Args): the argument as
// is when it is valid JSON, else the argument as a JSON string.
func ArgItem(s string) []byte {
	if json.Valid([]byte(s)) {
		return []byte(s)
	}
	b, _ := json.Marshal(s)
	return b
}

func (a *args) Items() iter.Seq[[]byte]                           { return slices.Values(a.items) }
func (a *args) Runs() iter.Seq[[][]byte]                          { return slices.Values([][][]byte{a.items}) }
func (a *args) Rest() int                                         { return len(a.items) }
func (a *args) Err() error                                        { return nil }
func (a *args) Oversize(int) (int, bool)                          { return 0, false }
func (a *args) AbortWhenIdle(func(), time.Duration) (stop func()) { return func() {} }
func (a *args) at(i int) position                                 { return position{index: i, arg: a.list[i]} }
