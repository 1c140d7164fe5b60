package main

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"strings"
	"testing"
)

func TestConfigure(t *testing.T) {
	tests := []struct {
		config, format, err string
	}{
		{`{}`, "%v", ""},
		{`null`, "%v", ""},
		{`{"format": "Number: %v"}`, "Number: %v", ""},
		{`{"format": "%d items"}`, "%d items", ""},
		{`{"format": "%[1]v (%[1]q)"}`, "%[1]v (%[1]q)", ""},
		{`{"format": "100%% %v"}`, "100%% %v", ""},
		{`{"format": "Number: "}`, "", `config format "Number: " has no verb for the item; use one such as %v, e.g. "Number: %v"`},
		{`{"format": "100%%"}`, "", `config format "100%%" has no verb`},
		{`{"format": "%v and %v"}`, "", `config format "%v and %v" has more than one verb`},
		{`{"format": "%!"}`, "", `config format "%!" does not apply to a value`},
		{`{"format": 5}`, "", "config key format must be a string, got 5"},
		{`{"fromat": "%v"}`, "", `unknown config key "fromat": printer knows only "format"`},
		{`{"b": 1, "a": 2, "format": "%v"}`, "", `unknown config key "a", "b": printer knows only "format"`},
		{`{"Format": "%v"}`, "", `unknown config key "Format"`},
		{`[]`, "", "config must be a JSON object"},
	}
	for _, tt := range tests {
		p := &printer{format: "%v"}
		err := p.configure(context.Background(), []byte(tt.config))
		switch {
		case tt.err == "" && err != nil:
			t.Errorf("configure(%s) = %v", tt.config, err)
		case tt.err != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.err)):
			t.Errorf("configure(%s) = %v, want %q", tt.config, err, tt.err)
		case tt.err == "" && p.format != tt.format:
			t.Errorf("configure(%s): format %q, want %q", tt.config, p.format, tt.format)
		}
	}
}

func TestLine(t *testing.T) {
	tests := []struct{ format, item, want string }{
		{"Number: %v", "1", "Number: 1"},
		{"Number: %v", "10", "Number: 10"},
		{"Number: %v", "-3", "Number: -3"},
		{"Number: %v", "1.50", "Number: 1.50"},
		{"Number: %v", "1e3", "Number: 1e3"},
		{"Number: %v", "123456789012345678901234567890", "Number: 123456789012345678901234567890"},
		{"Number: %v", `"one"`, "Number: one"},
		{"Number: %v", `"tab\tquote\""`, "Number: tab\tquote\""},
		{"Number: %v", " 7 ", "Number: 7"},
		{"%v", "true", "true"},
		{"%v", "null", "null"},
		{"%v", "[1, 2.5, \"x\"]", "[1 2.5 x]"},
		{"%v", `{"b": 1, "a": [2]}`, "map[a:[2] b:1]"},
		{"%d", "42", "42"},
		{"%05d", "-42", "-0042"},
		{"%x", "255", "ff"},
		{"%.2f", "2", "2.00"},
		{"%.1f", "1.25e2", "125.0"},
		{"%6v|", "1", "     1|"},
		{"%q", "1", `"1"`},
		{"%q", `"s"`, `"s"`},
		{"%d", "1.5", "%!d(float64=1.5)"}, // fmt's own complaint, per item
	}
	for _, tt := range tests {
		p := &printer{format: tt.format}
		got, err := p.line(json.RawMessage(tt.item))
		if err != nil || got != tt.want {
			t.Errorf("line(%q, %s) = %q, %v; want %q", tt.format, tt.item, got, err, tt.want)
		}
	}
	if _, err := (&printer{format: "%v"}).line(nil); err == nil {
		t.Error("line(empty) did not fail")
	}
}

// Outside a host the SDK's Printf writes to stdout, so print is testable
// as is.
func TestPrint(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout := os.Stdout
	os.Stdout = w
	p := &printer{format: "Number: %v"}
	for _, item := range []string{"1", "2", `"three"`} {
		if err := p.print(context.Background(), json.RawMessage(item)); err != nil {
			t.Error(err)
		}
	}
	os.Stdout = stdout
	w.Close()
	got, _ := io.ReadAll(r)
	r.Close()
	if want := "Number: 1\nNumber: 2\nNumber: three\n"; string(got) != want {
		t.Errorf("printed %q, want %q", got, want)
	}
}
