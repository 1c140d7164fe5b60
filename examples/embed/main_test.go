package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// The README shows this program's output: it must be what it prints,
// against the real double plugin.
func TestRun(t *testing.T) {
	double := filepath.Join(t.TempDir(), "double")
	if out, err := exec.Command("go", "build", "-o", double, "../../plugins/double").CombinedOutput(); err != nil {
		t.Fatalf("building the double plugin: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, double, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	if out.String() != want {
		t.Errorf("output\n%s\nwant\n%s", out.String(), want)
	}
}

// want is what the program prints, as the README shows it.
const want = `[2 4 6 8 10]
42
120
item 1 failed: double: bad input: cannot decode input "two" as number: want a number, got a JSON string (a task error: true)
3
246913578024691357802469135780
`

// The README's Go programs are these files, verbatim, and it shows this
// program's output.
func TestREADME(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range []string{"main.go", "../square/main.go"} {
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(readme, append(append([]byte("```go\n"), src...), "```"...)) {
			t.Errorf("README.md does not show %s as it is: copy it again", file)
		}
	}
	if !bytes.Contains(readme, []byte("go run ./examples/embed\n"+want+"```")) {
		t.Errorf("README.md does not show the output of examples/embed:\n%s", want)
	}
}
