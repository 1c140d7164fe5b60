// Command printer is the seed's "Number: N" plugin: it prints each item
// through the SDK, so lines from different workers come out whole and in
// order, never garbled like the seed's "Number: 1Number:\n 2".
//
// Its config, [plugins.printer.config] in pool.toml, has one key:
//
//	format = "Number: %v"   # a fmt format with one verb; default "%v"
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/pluginpool/pluginpool/sdk"
)

func main() {
	p := &printer{format: "%v"}
	// Not idempotent: a re-run after a crash would print the line twice.
	sdk.Serve(sdk.Plugin{Name: "printer", Version: "1.0.0", Init: p.configure, Task: sdk.Sink(p.print)})
}

// printer prints items with a format set once by configure, before any
// task runs; print only reads it.
type printer struct {
	format string
}

// configure reads the plugin's config object. Unknown keys are errors, so
// a typo in pool.toml does not silently print with the default format.
func (p *printer) configure(_ context.Context, config []byte) error {
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(config, &keys); err != nil {
		return fmt.Errorf("config must be a JSON object: %w", err)
	}
	var unknown []string
	for k, v := range keys {
		if k != "format" {
			unknown = append(unknown, strconv.Quote(k))
			continue
		}
		var format string
		if err := json.Unmarshal(v, &format); err != nil {
			return fmt.Errorf("config key format must be a string, got %s", v)
		}
		if err := checkFormat(format); err != nil {
			return err
		}
		p.format = format
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return fmt.Errorf("unknown config key %s: printer knows only \"format\"", strings.Join(unknown, ", "))
	}
	return nil
}

// checkFormat rejects a format that fmt cannot apply to one value, by
// trying it: fmt marks each problem in its output with "%!".
func checkFormat(format string) error {
	s := fmt.Sprintf(format, number("1"))
	switch {
	case strings.Contains(s, "%!(EXTRA"):
		return fmt.Errorf("config format %q has no verb for the item; use one such as %%v, e.g. \"Number: %%v\"", format)
	case strings.Contains(s, "(MISSING)"):
		return fmt.Errorf("config format %q has more than one verb; it formats one item (%%[1]v repeats it)", format)
	case strings.Contains(s, "%!"):
		return fmt.Errorf("config format %q does not apply to a value: fmt prints %q", format, s)
	}
	return nil
}

// print prints one item. It returns no value, so the host writes only the
// printed line.
func (p *printer) print(ctx context.Context, item json.RawMessage) error {
	line, err := p.line(item)
	if err != nil {
		return err
	}
	sdk.Printf(ctx, "%s", line)
	return nil
}

// line formats item: strings without quotes, numbers as written (1 stays 1,
// not 1e+00), null as null, arrays and objects as Go prints them.
func (p *printer) line(item json.RawMessage) (string, error) {
	item = bytes.TrimSpace(item)
	if len(item) == 0 {
		return "", errors.New("empty item")
	}
	var v any
	switch c := item[0]; {
	case c == '"':
		var s string
		if err := json.Unmarshal(item, &s); err != nil {
			return "", err
		}
		v = s
	case c == '-' || c >= '0' && c <= '9':
		v = number(item)
	case string(item) == "null":
		v = number("null") // prints as written too
	default: // arrays, objects, true, false
		dec := json.NewDecoder(bytes.NewReader(item))
		dec.UseNumber() // nested numbers print as written as well
		if err := dec.Decode(&v); err != nil {
			return "", err
		}
	}
	return fmt.Sprintf(p.format, v), nil
}

// number is a JSON number kept as its text. %v and %s print the text;
// integer verbs (%d, %x, ...) format it as an int64 and other verbs (%f,
// %.2f, %e, ...) as a float64, so any fmt format for numbers works.
type number string

func (n number) Format(f fmt.State, verb rune) {
	format := fmt.FormatString(f, verb)
	switch verb {
	case 'v', 's', 'q':
		fmt.Fprintf(f, format, string(n))
		return
	case 'd', 'b', 'o', 'O', 'x', 'X', 'c', 'U':
		if i, err := strconv.ParseInt(string(n), 10, 64); err == nil {
			fmt.Fprintf(f, format, i)
			return
		}
	}
	x, err := strconv.ParseFloat(string(n), 64)
	if err != nil {
		fmt.Fprintf(f, format, string(n)) // null, or out of range: fmt says what is wrong
		return
	}
	fmt.Fprintf(f, format, x)
}
