package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pluginpool/pluginpool/internal/testkit"
)

// The run and validate tests use the plugins TestMain built into binDir
// (cli_test.go), each with a pool.toml of its own in a temporary directory.

// pipelineDir writes pool.toml (extra appended to plugins double and
// printer) and the files given, name → content, into a new directory.
func pipelineDir(t *testing.T, extra string, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	toml := fmt.Sprintf(`
[plugins.double]
path = %q

[plugins.printer]
path = %q

[plugins.printer.config]
format = "Number: %%v"
`, filepath.Join(binDir, "double"), filepath.Join(binDir, "printer")) + extra
	files["pool.toml"] = toml
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// mainIn runs Main with -c dir/pool.toml, stdin and out, returning stdout
// (when out is nil), stderr and the exit status.
func mainIn(t *testing.T, dir string, stdin io.Reader, out io.Writer, args ...string) (string, string, ExitCode) {
	t.Helper()
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	var stdout, stderr testkit.Buffer
	if out == nil {
		out = &stdout
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code := Main(ctx, append([]string{"-c", filepath.Join(dir, "pool.toml")}, args...),
		IOStreams{In: stdin, Out: out, Err: &stderr})
	if ctx.Err() != nil {
		t.Fatalf("pluginpool %s did not finish within a minute", strings.Join(args, " "))
	}
	return stdout.String(), stderr.String(), code
}

const demoPipeline = `
[pipelines.demo]
stages = ["double", "printer"]
input = "numbers.jsonl"
output = "-"
default = true
`

// `make run`'s last step: the default pipeline prints "Number: 2" ... in
// order.
func TestRunDemo(t *testing.T) {
	dir := pipelineDir(t, demoPipeline, map[string]string{"numbers.jsonl": "1\n2\n3\n4\n5\n"})
	for _, args := range [][]string{{"run"}, {"run", "demo"}} {
		out, errs, code := mainIn(t, dir, nil, nil, args...)
		expect(t, args, out, errs, code, "Number: 2\nNumber: 4\nNumber: 6\nNumber: 8\nNumber: 10\n", "", ExitOK)
	}
}

// An item failing in stage 1 of 3 is reported with its line and stage; the
// output file holds every other result; the exit status is 1.
func TestRunFailedItem(t *testing.T) {
	dir := pipelineDir(t, `
[pipelines.three]
stages = ["double", "double", "printer"]
input = "in.jsonl"
output = "out.txt"
`, map[string]string{"in.jsonl": "1\n2\n\"x\"\n\n4\n"})
	out, errs, code := mainIn(t, dir, nil, nil, "run")
	want := "pluginpool: line 3: stage 1 (double): bad input: cannot decode input \"x\" as number: want a number, got a JSON string\n" +
		"pluginpool: 1 of 4 items failed\n"
	expect(t, []string{"run"}, out, errs, code, "", want, ExitFailed)
	got, err := os.ReadFile(filepath.Join(dir, "out.txt"))
	if err != nil || string(got) != "Number: 4\nNumber: 8\nNumber: 16\n" {
		t.Errorf("out.txt: %q, %v", got, err)
	}
	if names := testkit.DirNames(t, dir); !slices.Equal(names, []string{"in.jsonl", "out.txt", "pool.toml"}) {
		t.Errorf("directory holds %v", names)
	}
}

func TestRunFlags(t *testing.T) {
	dir := pipelineDir(t, demoPipeline+`
[pipelines.twice]
stages = ["double", {plugin = "double", workers = 1}]
input = "numbers.jsonl"
output = "never.jsonl"
`, map[string]string{"numbers.jsonl": "1\n2\n3\n"})

	// stdin and stdout instead of the config's files
	args := []string{"run", "twice", "--input", "-", "--output", "-"}
	out, errs, code := mainIn(t, dir, strings.NewReader("10\n20\n"), nil, args...)
	expect(t, args, out, errs, code, "40\n80\n", "", ExitOK)

	// a file relative to the working directory
	args = []string{"run", "twice", "-o", filepath.Join(dir, "out.jsonl"), "--unordered"}
	out, errs, code = mainIn(t, dir, nil, nil, args...)
	expect(t, args, out, errs, code, "", "", ExitOK)
	if got, _ := os.ReadFile(filepath.Join(dir, "out.jsonl")); len(got) != len("4\n8\n12\n") {
		t.Errorf("out.jsonl holds %q", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "never.jsonl")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the config's output was written: %v", err)
	}

	// --stats names each stage
	args = []string{"run", "--stats"}
	_, errs, code = mainIn(t, dir, nil, nil, args...)
	if code != ExitOK || !strings.Contains(errs, "stage 1 (double): 3 items (3 ok, 0 failed)") ||
		!strings.Contains(errs, "stage 2 (printer): 3 items") {
		t.Errorf("run --stats: exit %d, stderr:\n%s", code, errs)
	}
}

func TestRunBadCommandLines(t *testing.T) {
	dir := pipelineDir(t, demoPipeline+`
[pipelines.other]
stages = ["double"]
`, map[string]string{"numbers.jsonl": "1\n"})
	for _, tt := range []struct {
		args []string
		err  string
		code ExitCode
	}{
		{[]string{"run", "demoo"}, "pluginpool: unknown pipeline \"demoo\": pool.toml has no [pipelines.demoo] table (did you mean \"demo\"?)\n", ExitUsage},
		{[]string{"run", "demo", "other"}, "pluginpool: accepts at most 1 arg(s), received 2\n", ExitUsage},
		{[]string{"run", "demo", "--input", filepath.Join(dir, "nope.jsonl")}, "", ExitFailed},
	} {
		out, errs, code := mainIn(t, dir, nil, nil, tt.args...)
		if tt.err == "" {
			if code != tt.code || !strings.Contains(errs, "no such file") {
				t.Errorf("pluginpool %v: exit %d, stderr %q", tt.args, code, errs)
			}
			continue
		}
		expect(t, tt.args, out, errs, code, "", tt.err, tt.code)
	}

	// no default: the message lists the pipelines
	dir = pipelineDir(t, strings.Replace(demoPipeline, "default = true", "", 1)+`
[pipelines.other]
stages = ["double"]
`, map[string]string{"numbers.jsonl": "1\n"})
	_, errs, code := mainIn(t, dir, nil, nil, "run")
	if code != ExitUsage || !strings.Contains(errs, "2 pipelines (demo, other) and none has default = true") {
		t.Errorf("run without a default: exit %d, stderr %q", code, errs)
	}

	// a stage that cannot start
	dir = pipelineDir(t, `
[plugins.gone]
path = "gone"

[pipelines.p]
stages = ["double", "gone"]
output = "out.jsonl"
`, map[string]string{})
	_, errs, code = mainIn(t, dir, strings.NewReader("1\n"), nil, "run")
	if code != ExitStart || !strings.HasPrefix(errs, "pluginpool: stage 2: gone: cannot start ") {
		t.Errorf("run with a missing plugin: exit %d, stderr %q", code, errs)
	}
	if names := testkit.DirNames(t, dir); !slices.Equal(names, []string{"pool.toml"}) {
		t.Errorf("directory holds %v", names)
	}
}

// stdout closed early (| head): a quiet 141, like a SIGPIPE-killed process.
func TestRunStdoutClosed(t *testing.T) {
	dir := pipelineDir(t, `
[pipelines.p]
stages = ["double", "double"]
`, map[string]string{})
	in := strings.NewReader(strings.Repeat("1\n", 300000))
	_, errs, code := mainIn(t, dir, in, &testkit.FailingWriter{Err: syscall.EPIPE}, "run")
	if code != exitSignal(syscall.SIGPIPE) || errs != "" {
		t.Errorf("exit %d, stderr %q; want 141 and nothing", code, errs)
	}
}

// SIGINT mid-run: exit 130, and neither the output file nor its temporary
// file is left. Runs the CLI binary, reading a stdin that never ends.
func TestRunInterrupt(t *testing.T) {
	dir := pipelineDir(t, `
[pipelines.p]
stages = ["double", "double"]
input = "-"
output = "out.jsonl"
`, map[string]string{})
	cmd := exec.Command(filepath.Join(binDir, "pluginpool"), "-c", filepath.Join(dir, "pool.toml"), "run")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	var stderr testkit.Buffer
	cmd.Stderr = &stderr
	cmd.WaitDelay = 5 * time.Second // should a plugin keep stderr open
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		fmt.Fprintln(stdin, i)
	}
	// The temporary file appears before the stages start; give them time
	// to take the items.
	deadline := time.Now().Add(30 * time.Second)
	for len(testkit.DirNames(t, dir)) < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if names := testkit.DirNames(t, dir); len(names) != 2 || !strings.HasPrefix(names[0], ".out.jsonl.tmp-") {
		t.Errorf("during the run the directory held %v", names)
	}
	time.Sleep(300 * time.Millisecond)
	cmd.Process.Signal(os.Interrupt)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("pluginpool run did not stop within 30 s of SIGINT; stderr:\n%s", stderr.String())
	}
	if code := cmd.ProcessState.ExitCode(); code != 130 {
		t.Errorf("exit %d, want 130; stderr:\n%s", code, stderr.String())
	}
	if names := testkit.DirNames(t, dir); !slices.Equal(names, []string{"pool.toml"}) {
		t.Errorf("after SIGINT the directory holds %v, want only pool.toml", names)
	}
}

func TestValidate(t *testing.T) {
	dir := pipelineDir(t, demoPipeline, map[string]string{"numbers.jsonl": "1\n"})
	cfg := filepath.Join(dir, "pool.toml")
	out, errs, code := mainIn(t, dir, nil, nil, "validate")
	expect(t, []string{"validate"}, out, errs, code, cfg+": OK (2 plugins, 1 pipeline)\n", "", ExitOK)

	// Schema problems, each at its line; nothing else is checked.
	dir = pipelineDir(t, `
[pool]
workers = -1
task_timeout = "5 minutes"

[pipelines.p]
stages = ["double", "tripple"]
colour = "blue"
`, map[string]string{})
	cfg = filepath.Join(dir, "pool.toml")
	out, errs, code = mainIn(t, dir, nil, nil, "validate")
	lines := strings.Split(strings.TrimSuffix(errs, "\n"), "\n")
	if out != "" || code != ExitUsage || len(lines) != 5 ||
		!strings.HasPrefix(lines[0], "pool.toml:12: pool.workers: ") ||
		!strings.HasPrefix(lines[1], "pool.toml:13: pool.task_timeout: ") ||
		!strings.HasPrefix(lines[2], "pool.toml:16: pipelines.p.stages[1]: ") || !strings.Contains(lines[2], `"tripple"`) ||
		!strings.HasPrefix(lines[3], "pool.toml:17: pipelines.p.colour: ") ||
		lines[4] != "pluginpool: "+cfg+" is invalid: 4 problems" {
		t.Errorf("validate: stdout %q, exit %d, stderr:\n%s", out, code, errs)
	}

	// File problems: every one, with its line.
	script := "#!/bin/sh\n"
	sum := sha256.Sum256([]byte(script))
	dir = pipelineDir(t, fmt.Sprintf(`
[plugins.gone]
path = "gone"

[plugins.noexec]
path = "noexec.sh"

[plugins.wrongsum]
path = %q
sha256 = %q

[plugins.rightsum]
path = "script.sh"
sha256 = %q

[pipelines.p]
stages = ["double"]
input = "missing.jsonl"
output = "nodir/out.jsonl"
`, filepath.Join(binDir, "double"), hex.EncodeToString(sum[:]), hex.EncodeToString(sum[:])),
		map[string]string{"noexec.sh": script})
	if err := os.WriteFile(filepath.Join(dir, "script.sh"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg = filepath.Join(dir, "pool.toml")
	out, errs, code = mainIn(t, dir, nil, nil, "validate")
	lines = strings.Split(strings.TrimSuffix(errs, "\n"), "\n")
	if out != "" || code != ExitUsage || len(lines) != 6 ||
		!strings.HasPrefix(lines[0], "pool.toml:12: plugins.gone.path: ") || !strings.Contains(lines[0], "does not exist") ||
		!strings.HasPrefix(lines[1], "pool.toml:15: plugins.noexec.path: ") || !strings.Contains(lines[1], "not executable") ||
		!strings.HasPrefix(lines[2], "pool.toml:19: plugins.wrongsum.sha256: ") ||
		!strings.HasPrefix(lines[3], "pool.toml:27: pipelines.p.input: ") ||
		!strings.HasPrefix(lines[4], "pool.toml:28: pipelines.p.output: ") ||
		lines[5] != "pluginpool: "+cfg+" is invalid: 5 problems" {
		t.Errorf("validate: stdout %q, exit %d, stderr:\n%s", out, code, errs)
	}

	// No config at all.
	_, errs, code = mainIn(t, t.TempDir(), nil, nil, "validate")
	if code != ExitUsage || !strings.Contains(errs, "no such file or directory; pass -c FILE") {
		t.Errorf("validate without a config: exit %d, stderr %q", code, errs)
	}
}
