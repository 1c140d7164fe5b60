package pool

import (
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestLogLinesMendsRecords(t *testing.T) {
	long := "{\"@message\": 5, \"pad\": \"" + strings.Repeat("x", maxLogLine) + "\"}"
	in := "plain line\n" +
		`{"@message": 5, "@level": "warn", "k": [1]}` + "\n" +
		`{"@level": null, "@message": "ok"}` + "\n" +
		`{"@message": "fine", "@level": "info"}` + "\n" +
		`{"@timestamp": {"a": 1}}` + "\n" +
		long + "\n" +
		`{not json "@message"` + "\n" +
		"no newline at the end"
	want := "plain line\n" +
		`{"@level":"warn","@message":"5","k":[1]}` + "\n" +
		`{"@level":"null","@message":"ok"}` + "\n" +
		`{"@message": "fine", "@level": "info"}` + "\n" +
		`{"@timestamp":"{\"a\":1}"}` + "\n" +
		long + "\n" + // too long for go-plugin to parse: as it is
		`{not json "@message"` + "\n" +
		"no newline at the end"
	got, err := io.ReadAll(newLogLines(io.NopCloser(iotest.OneByteReader(strings.NewReader(in)))))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("got:\n%.300s\nwant:\n%.300s", got, want)
	}
}
