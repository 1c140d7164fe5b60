package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/pluginpool/pluginpool/internal/testkit"
	"github.com/pluginpool/pluginpool/sdk"
)

// Issue 8's edges, cases 2, 8 and 9: any bytes travel and are shown
// escaped, numbers are exact, sizes and config values are bounded, and
// SIGHUP (like SIGTERM) stops any command cleanly.

// badBytes is what the badbytes fixture fails with and prints.
const badBytes = testkit.BadBytes

// badBytesShown is badBytes as the CLI shows it on stderr or a terminal.
const badBytesShown = `bad \xff\x00\x1b[31mred\xc3`

// edgeFixture is the task of the fixture plugins of these tests.
func edgeFixture(mode string) sdk.Task {
	if mode == "int" { // takes ints only
		return sdk.Func(func(_ context.Context, n int) (int, error) { return n, nil })
	}
	return sdk.Raw(testkit.BadBytesTask) // badbytes
}

// edgeDir writes a pool.toml with double, printer and the fixtures, plus
// extra, into a new directory.
func edgeDir(t *testing.T, extra string) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, mode := range []string{"badbytes", "int"} {
		fmt.Fprintf(&b, "\n[plugins.%s]\npath = %q\nworkers = 1\nenv = { %s = %q, GORACE = \"atexit_sleep_ms=0\" }\n", mode, self, fixtureEnv, mode)
	}
	return pipelineDir(t, b.String()+extra, map[string]string{})
}

// Case 2: `printf '1\n"\xff"\n3\n' | pluginpool map double` gives 2 and 6;
// item 2 fails alone, named by its line, its bytes escaped; no worker
// crashes or restarts (that would log too), nothing is retried.
func TestInvalidUTF8Item(t *testing.T) {
	dir := edgeDir(t, "")
	out, errText, code := mainIn(t, dir, strings.NewReader("1\n\"\xff\"\n3\n"), nil, "map", "--stats", "double")
	var reports, stats []string
	for _, l := range strings.SplitAfter(errText, "\n") {
		if strings.HasPrefix(l, "pluginpool: ") {
			reports = append(reports, l)
		} else if l != "" {
			stats = append(stats, l)
		}
	}
	want := []string{
		"pluginpool: line 2: double: bad input: cannot decode input \"\\xff\" as number: want a number, got a JSON string\n",
		"pluginpool: 1 of 3 items failed\n",
	}
	if out != "2\n6\n" || code != ExitFailed || !slices.Equal(reports, want) {
		t.Errorf("stdout %q, exit %d, stderr:\n%s\nwant 2, 6, exit 1 and %q", out, code, errText, want)
	}
	if len(stats) < 3 || !strings.HasPrefix(stats[0], "double: 3 items (2 ok, 1 failed)") || stats[1] != "  retries 0, timeouts 0, worker restarts 0\n" {
		t.Errorf("stats: %q; want 2 ok, 1 failed, no retry and no restart", stats)
	}
}

// Case 2: a task's error and a printed line full of control bytes and
// invalid UTF-8 reach stderr escaped; the printed line is data, written
// to stdout byte for byte (JSON Lines output holds lines as the plugin
// printed them). A value is not: one that is not UTF-8 JSON fails its item
// (issue 10), its bytes escaped in the message.
func TestPluginBytesShownSafely(t *testing.T) {
	dir := edgeDir(t, "")
	args := []string{"map", "badbytes", `"fail"`, `"print"`, "\"\xff\"", "3"}
	out, errText, code := mainIn(t, dir, nil, nil, args...)
	wantOut := badBytes + "\n1\n3\n"
	wantErr := "pluginpool: item 1 (\"fail\"): badbytes: " + badBytesShown + "\n" +
		"pluginpool: item 3 (\"\\xff\"): badbytes: the plugin returned a value that is not UTF-8: \"\\xff\"\n" +
		"pluginpool: 2 of 4 items failed\n"
	expect(t, args, out, errText, code, wantOut, wantErr, ExitFailed)

	// An argument's control bytes are escaped where it is named.
	args = []string{"map", "int", "\x1b[2J", "7"}
	out, errText, code = mainIn(t, dir, nil, nil, args...)
	wantErr = `pluginpool: item 1 (\x1b[2J): int: bad input: cannot decode input "\u001b[2J" as int: want int, got a JSON string` + "\n" +
		"pluginpool: 1 of 2 items failed\n"
	expect(t, args, out, errText, code, "7\n", wantErr, ExitFailed)
}

// Case 2: on a terminal, stdout shows what plugins print escaped: the
// CLI binary with its stdout on a pseudo-terminal.
func TestTerminalOutputEscaped(t *testing.T) {
	dir := edgeDir(t, "")
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	defer ptmx.Close()
	cmd := exec.Command(filepath.Join(binDir, "pluginpool"), "-c", filepath.Join(dir, "pool.toml"), "map", "badbytes", `"print"`, "2")
	cmd.Stdout = tty
	var errb testkit.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tty.Close()
	got, _ := io.ReadAll(ptmx) // EIO once the CLI has exited
	if err := cmd.Wait(); err != nil {
		t.Fatalf("pluginpool: %v; stderr %q", err, errb.String())
	}
	// The terminal turns \n into \r\n.
	if want := badBytesShown + "\r\n1\r\n2\r\n"; string(got) != want {
		t.Errorf("the terminal showed %q, want %q", got, want)
	}
}

// Case 8: double answers exactly, integers as integers, or fails the item.
func TestDoubleExact(t *testing.T) {
	dir := edgeDir(t, "")
	args := []string{"map", "double", "123456789012345678901234567890", "9223372036854775808", "0.1",
		"1.23456789012345678901234567890", "1e400", "2.5e-7", "6e20", "1e9999999999999999"}
	out, errText, code := mainIn(t, dir, nil, nil, args...)
	wantOut := "246913578024691357802469135780\n18446744073709551616\n0.2\n2.4691357802469135780246913578\n2e+400\n5e-7\n1.2e+21\n"
	wantErr := "pluginpool: item 8 (1e9999999999999999): double: 1e9999999999999999: exponent out of range (at most 1000000000000000 either way)\n" +
		"pluginpool: 1 of 8 items failed\n"
	expect(t, args, out, errText, code, wantOut, wantErr, ExitFailed)
}

// Case 8: a line over max_item_bytes is reported with its true size, and
// an item quoted in a message is quoted by a short, escaped prefix.
func TestItemSizesAndQuotes(t *testing.T) {
	dir := edgeDir(t, "\n[plugins.small]\npath = "+strconv.Quote(filepath.Join(binDir, "double"))+"\nmax_item_bytes = \"1KiB\"\n")
	long := strings.Repeat("7", 20_000_000)

	// 20 MB, over a 1 KiB limit and the reader's 1 MiB block: cut and
	// skipped while read, reported at its size. Through a pipe, as stdin.
	pr, pw := io.Pipe()
	go func() {
		io.WriteString(pw, "1\n"+long+"\n3\n")
		pw.Close()
	}()
	out, errText, code := mainIn(t, dir, pr, nil, "map", "small")
	expect(t, []string{"map", "small"}, out, errText, code, "2\n6\n",
		"pluginpool: line 2: item is 20000000 bytes, over the 1024-byte limit (max_item_bytes)\npluginpool: 1 of 3 items failed\n", ExitFailed)

	// A 20 MB number a plugin cannot take: its first 64 bytes, not 20 MB
	// of stderr; a line of control bytes: escaped.
	in := "1\n" + long + "\n\"\x1b]0;pwned\x07\"\n3\n"
	out, errText, code = mainIn(t, dir, strings.NewReader(in), nil, "map", "int")
	prefix := long[:64] + "… (20000000 bytes)"
	wantErr := "pluginpool: line 2: int: bad input: cannot decode input " + prefix + " as int: want int, got a JSON number " + prefix + "\n" +
		"pluginpool: line 3: int: bad input: cannot decode input \"\\x1b]0;pwned\\x07\" as int: invalid character '\\x1b' in string literal\n" +
		"pluginpool: 2 of 4 items failed\n"
	expect(t, []string{"map", "int"}, out, errText, code, "1\n3\n", wantErr, ExitFailed)

	// Twice double's answer for a 20 MB integer is exact, and whole.
	out, errText, code = mainIn(t, dir, strings.NewReader("5"+long[1:]+"\n"), nil, "map", "double")
	if want := "11" + strings.Repeat("5", 19_999_998) + "4\n"; code != ExitOK || errText != "" || out != want {
		t.Errorf("double of a 20 MB integer: exit %d, stderr %q, %d bytes out (want %d)", code, errText, len(out), len(want))
	}
}

// Case 8: config values out of range, and configs too large or too deep,
// are errors naming the file and line; nothing crashes.
func TestConfigLimits(t *testing.T) {
	dir := edgeDir(t, "\n[pool]\nworkers = 100000\n")
	data, err := os.ReadFile(filepath.Join(dir, "pool.toml"))
	if err != nil {
		t.Fatal(err)
	}
	line := strings.Count(string(data[:strings.Index(string(data), "workers = 100000")]), "\n") + 1
	want := fmt.Sprintf("pool.toml:%d: pool.workers: must be at most 1024, got 100000\n", line)
	for _, args := range [][]string{{"validate"}, {"map", "double", "1"}} {
		out, errText, code := mainIn(t, dir, nil, nil, args...)
		if code != ExitUsage || out != "" || !strings.Contains(errText, want) {
			t.Errorf("%s: exit %d, stderr %q; want 2 and %q", args[0], code, errText, want)
		}
	}

	for _, tc := range []struct{ name, content, want string }{
		{"big.toml", strings.Repeat("# a comment\n", 1<<20),
			"big.toml: is 12582912 bytes, larger than the 1048576-byte (1 MiB) limit of a config file: is it the right file?\n"},
		{"deep.toml", "[plugins.d]\npath = \"d\"\n[plugins.d.config]\nx = " + strings.Repeat("[", 1_000_000) + "\n",
			"deep.toml:4: nested more than 32 levels deep (tables, dotted keys, inline tables and arrays): flatten it\n"},
	} {
		path := filepath.Join(dir, tc.name)
		if err := os.WriteFile(path, []byte(tc.content), 0o644); err != nil {
			t.Fatal(err)
		}
		out, errText, code := mainIn(t, dir, nil, nil, "-c", path, "validate")
		want := tc.want + "pluginpool: " + path + " is invalid: 1 problem\n"
		if out != "" || errText != want || code != ExitUsage {
			t.Errorf("validate %s: exit %d, stdout %q, stderr %q; want 2 and %q", tc.name, code, out, errText, want)
		}
	}
}

// Case 8: SIGTERM while the config is still loading (here, waiting for
// the rest of it on a FIFO) ends the CLI at once, with 143.
func TestSignalWhileLoading(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "pool.toml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	cmd := exec.Command(filepath.Join(binDir, "pluginpool"), "-c", fifo, "validate")
	var out, errb testkit.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w, err := os.OpenFile(fifo, os.O_WRONLY, 0) // returns once the CLI opened it to read
	if err != nil {
		cmd.Process.Kill()
		t.Fatal(err)
	}
	defer w.Close()
	io.WriteString(w, "[pool]\nworkers = 2\n") // and the rest never comes
	testkit.Eventually(t, time.Minute, "the CLI to handle SIGTERM", func() bool { return catches(cmd.Process.Pid, syscall.SIGTERM) })
	began := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if code := testkit.ExitStatus(err); code != 143 || out.String() != "" || errb.String() != "" {
			t.Errorf("exit %d, stdout %q, stderr %q; want 143 and nothing", code, out.String(), errb.String())
		}
		t.Logf("exited %s after SIGTERM", time.Since(began).Round(time.Millisecond))
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatal("the CLI ignored SIGTERM while loading its config")
	}
}

// catches reports whether process pid has a handler for sig (SigCgt in
// /proc/PID/status).
func catches(pid int, sig syscall.Signal) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "SigCgt:"); ok {
			mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err == nil && mask&(1<<(uint(sig)-1)) != 0
		}
	}
	return false
}

// Case 9: SIGHUP is handled like SIGTERM, by every command: run stops,
// removes its temporary output file and leaves the target as it was,
// kills its plugins, and exits 129; so does map.
func TestHangup(t *testing.T) {
	pt := newProcTest(t)
	dir := filepath.Dir(pt.config)
	if err := os.WriteFile(pt.config, []byte(`
[plugins.double]
path = "double"
workers = 2

[pipelines.p]
stages = ["double", "double"]
output = "out.jsonl"
`), 0o644); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(dir, "out.jsonl")
	if err := os.WriteFile(target, []byte("the previous run's results\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"run"}, {"map", "double"}} {
		cmd := pt.command(args...)
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		var out, errb testkit.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		io.WriteString(stdin, "1\n2\n3\n") // and more never comes
		testkit.Eventually(t, time.Minute, "the plugin processes", func() bool { return len(pt.plugins()) >= 2 })
		if args[0] == "run" {
			testkit.Eventually(t, time.Minute, "run's temporary file", func() bool {
				return slices.ContainsFunc(testkit.DirNames(t, dir), func(n string) bool { return strings.HasPrefix(n, ".out.jsonl.tmp-") })
			})
		} else {
			testkit.Eventually(t, time.Minute, "map's results", func() bool { return out.String() == "2\n4\n6\n" })
		}
		cmd.Process.Signal(syscall.SIGHUP)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if code := testkit.ExitStatus(err); code != 129 {
				t.Errorf("%s: exit %d, want 129; stderr %q", args[0], code, errb.String())
			}
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Fatalf("%s ignored SIGHUP; stderr %q", args[0], errb.String())
		}
		stdin.Close()
		pt.noneLeft(t)
	}
	if names := testkit.DirNames(t, dir); !slices.Equal(names, []string{"double", "out.jsonl", "pool.toml"}) {
		t.Errorf("after SIGHUP the directory holds %v; want no temporary file", names)
	}
	if b, _ := os.ReadFile(target); string(b) != "the previous run's results\n" {
		t.Errorf("the target became %q; want it as it was", b)
	}
}

// Case 8: check quotes its sample and the result escaped too (U+202E, a
// right-to-left override, is valid JSON and shown escaped; a result of
// invalid UTF-8 fails, issue 10, quoted escaped in the error).
func TestCheckQuotesSafely(t *testing.T) {
	dir := edgeDir(t, "")
	out, errText, code := mainIn(t, dir, nil, nil, "check", "badbytes", "--input", "\"\u202e\"")
	if code != ExitOK || errText != "" || !strings.Contains(out, "task        \"\\u202e\" → \"\\u202e\" in ") {
		t.Errorf("check: exit %d, stderr %q, stdout:\n%s", code, errText, out)
	}
	out, errText, code = mainIn(t, dir, nil, nil, "check", "badbytes", "--input", "\"\xff\"")
	if want := "pluginpool: check badbytes: the sample task \"\\xff\" failed: the plugin returned a value that is not UTF-8: \"\\xff\"\n"; code != ExitFailed || errText != want || !strings.Contains(out, "task        \"\\xff\" → failed") {
		t.Errorf("check: exit %d, stderr %q, want %q; stdout:\n%s", code, errText, want, out)
	}
	out, errText, code = mainIn(t, dir, nil, nil, "check", "badbytes", "--input", `"fail"`)
	if want := "pluginpool: check badbytes: the sample task \"fail\" failed: " + badBytesShown + "\n"; code != ExitFailed || errText != want {
		t.Errorf("check: exit %d, stderr %q, want %q; stdout:\n%s", code, errText, want, out)
	}
}
