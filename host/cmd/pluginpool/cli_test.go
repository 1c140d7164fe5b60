package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/pluginpool/pluginpool/host/pool"
	"github.com/pluginpool/pluginpool/internal/testkit"
	"github.com/pluginpool/pluginpool/sdk"
)

// The CLI tests run Main in process against real plugins: plugins/double
// and plugins/printer built once into a temporary directory by TestMain,
// and fixture plugins served by this test binary itself when go-plugin's
// cookie is set (picked by CLITEST_FIXTURE). A few tests run the CLI binary,
// built there too, as a real process: for SIGPIPE, SIGINT and a terminal.
const fixtureEnv = "CLITEST_FIXTURE"

var (
	binDir  string // double, printer, pluginpool
	cfgPath string // pool.toml over them
)

func TestMain(m *testing.M) {
	testkit.ServeFixture(fixtureEnv, serveFixture)
	os.Exit(setupAndRun(m))
}

func setupAndRun(m *testing.M) int {
	dir, err := testkit.Build(testkit.Double, testkit.Printer, testkit.CLI)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binDir = dir
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cfgPath = filepath.Join(dir, "pool.toml")
	if err := os.WriteFile(cfgPath, []byte(testConfig(dir, self)), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// Main and every pool it starts must be gone when it returns.
	return testkit.Run(m)
}

func testConfig(dir, self string) string {
	fixture := func(name, mode string) string {
		return fmt.Sprintf(`
[plugins.%s]
path = %q
env = { %s = %q, GORACE = "atexit_sleep_ms=0" }
workers = 1
`, name, self, fixtureEnv, mode)
	}
	return fmt.Sprintf(`
[plugins.double]
path = "double"

[plugins.printer]
path = "printer"

[plugins.printer.config]
format = "Number: %%v"

[plugins.badformat]
path = "printer"

[plugins.badformat.config]
format = "no verb"

[plugins.missing]
path = "missing"

[plugins.script]
path = "script.sh"
`) + fixture("logger", "logger") + fixture("panicky", "panicky")
}

// serveFixture serves a fixture plugin in this process.
func serveFixture(mode string) {
	p := sdk.Plugin{Name: mode, Version: "0.0.1", Idempotent: true}
	switch mode {
	case "logger": // logs a warning and an info line per item
		p.Task = sdk.Func(func(ctx context.Context, n int) (int, error) {
			sdk.Logger(ctx).Warn("fixture warning", "item", n)
			sdk.Logger(ctx).Info("fixture info", "item", n)
			return n, nil
		})
	case "crashfrom": // exits on every item from 1000 on: a crash loop, once it gets there
		p.Task = sdk.Func(func(ctx context.Context, n int) (int, error) {
			if n >= 1000 {
				fmt.Fprintln(os.Stderr, "crashing on", n)
				// Long enough for the answers sent before to leave the
				// process: the test counts exactly which items ran.
				time.Sleep(50 * time.Millisecond)
				os.Exit(4)
			}
			return 2 * n, nil
		})
	case "panicky":
		p.Task = sdk.Func(func(ctx context.Context, n int) (int, error) {
			panic(fmt.Sprintf("fixture panic on %d", n))
		})
	case "stdinthief": // reads stdin before Serve, as a careless plugin (or one without the SDK) would
		io.Copy(io.Discard, os.Stdin)
		p.Task = sdk.Func(func(ctx context.Context, n int) (int, error) { return n, nil })
	case "badbytes", "int":
		p.Task = edgeFixture(mode) // edges_test.go
	default:
		fmt.Fprintf(os.Stderr, "unknown fixture %q\n", mode)
		os.Exit(2)
	}
	sdk.Serve(p)
}

// cli runs Main with the test config and stdin, returning stdout, stderr
// and the exit status.
func cli(t *testing.T, stdin io.Reader, args ...string) (string, string, ExitCode) {
	t.Helper()
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	var out, errb testkit.Buffer
	code := Main(context.Background(), append([]string{"-c", cfgPath}, args...), IOStreams{In: stdin, Out: &out, Err: &errb})
	return out.String(), errb.String(), code
}

func expect(t *testing.T, args []string, gotOut, gotErr string, gotCode ExitCode, wantOut, wantErr string, wantCode ExitCode) {
	t.Helper()
	if gotOut != wantOut || gotErr != wantErr || gotCode != wantCode {
		t.Errorf("pluginpool %s:\n got stdout %q\n     stderr %q\n     exit %d\nwant stdout %q\n     stderr %q\n     exit %d",
			strings.Join(args, " "), gotOut, gotErr, gotCode, wantOut, wantErr, wantCode)
	}
}

func TestSeedExamples(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		out     string
		errText string
		code    ExitCode
	}{
		{[]string{"map", "double", "1", "2", "3", "4", "5"}, "2\n4\n6\n8\n10\n", "", ExitOK},
		{[]string{"map", "-w", "3", "double", "1", "2", "3", "4", "5"}, "2\n4\n6\n8\n10\n", "", ExitOK},
		{[]string{"map", "printer", "1", "2", "3", "4"}, "Number: 1\nNumber: 2\nNumber: 3\nNumber: 4\n", "", ExitOK},
		{[]string{"map", "-w", "4", "--chunk-size", "1", "printer", "1", "2", "3", "4"}, "Number: 1\nNumber: 2\nNumber: 3\nNumber: 4\n", "", ExitOK},
		{[]string{"apply", "double", "21"}, "42\n", "", ExitOK},
		{[]string{"apply", "printer", "Child process"}, "Number: Child process\n", "", ExitOK},
		{[]string{"map", "double", "1", "x", "3"}, "2\n6\n",
			"pluginpool: item 2 (x): double: bad input: cannot decode input \"x\" as number: want a number, got a JSON string\n" +
				"pluginpool: 1 of 3 items failed\n", ExitFailed},
		{[]string{"apply", "double", "x"}, "",
			"pluginpool: item 1 (x): double: bad input: cannot decode input \"x\" as number: want a number, got a JSON string\n", ExitFailed},
	} {
		out, errText, code := cli(t, nil, tc.args...)
		expect(t, tc.args, out, errText, code, tc.out, tc.errText, tc.code)
	}
}

func TestMapStdin(t *testing.T) {
	const n = 100000
	var in, want strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&in, "%d\n", i)
		fmt.Fprintf(&want, "%d\n", 2*i)
	}
	out, errText, code := cli(t, strings.NewReader(in.String()), "map", "double")
	if code != ExitOK || errText != "" {
		t.Fatalf("exit %d, stderr %q", code, errText)
	}
	if out != want.String() {
		got := strings.Count(out, "\n")
		t.Fatalf("stdout: %d lines, not the %d right answers in order; starts %.40q", got, n, out)
	}
}

func TestMapMalformedLines(t *testing.T) {
	in := "1\n2\n{bad\n\n4\n"
	out, errText, code := cli(t, strings.NewReader(in), "map", "double")
	expect(t, []string{"map", "double", "<<<", in}, out, errText, code, "2\n4\n8\n",
		"pluginpool: line 3: double: bad input: cannot decode input {bad as number: invalid character 'b' looking for beginning of object key string\n"+
			"pluginpool: 1 of 4 items failed\n", ExitFailed)
}

func TestBadCommandLines(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code ExitCode
		err  string // a part of stderr
	}{
		{[]string{"map", "nosuch", "1"}, ExitUsage, `unknown plugin "nosuch": pool.toml has no [plugins.nosuch] table; configured: badformat, double, logger, missing, panicky, printer, script`},
		{[]string{"map", "missing", "1"}, ExitStart, "missing: cannot start " + filepath.Join(binDir, "missing")},
		{[]string{"map"}, ExitUsage, "requires at least 1 arg(s)"},
		{[]string{"map", "--workers", "0", "double", "1"}, ExitUsage, "--workers must be between 1 and 1024, got 0"},
		{[]string{"map", "--workers", "100000", "double", "1"}, ExitUsage, "--workers must be between 1 and 1024, got 100000"},
		{[]string{"map", "--chunk-size", "1000000000000", "double", "1"}, ExitUsage, "--chunk-size must be between 1 and 1048576, got 1000000000000"},
		{[]string{"map", "--bogus", "double"}, ExitUsage, "unknown flag: --bogus"},
		{[]string{"apply", "double"}, ExitUsage, "accepts 2 arg(s)"},
		{[]string{"--log-level", "loud", "map", "double", "1"}, ExitUsage, `--log-level "loud"`},
		{[]string{"map", "--metrics-addr", "nohost:99999", "double", "1"}, ExitUsage, "--metrics-addr"},
		{[]string{"nosuchcommand"}, ExitUsage, `unknown command "nosuchcommand"`},
	} {
		out, errText, code := cli(t, nil, tc.args...)
		if code != tc.code || !strings.Contains(errText, tc.err) || out != "" {
			t.Errorf("pluginpool %s: exit %d, stdout %q, stderr %q; want exit %d and stderr containing %q",
				strings.Join(tc.args, " "), code, out, errText, tc.code, tc.err)
		}
	}
}

func TestHelp(t *testing.T) {
	g := &globalOptions{}
	root := newRootCmd(context.Background(), g)
	cmds := [][]string{{"--help"}, {"help"}}
	for _, c := range root.Commands() {
		cmds = append(cmds, []string{c.Name(), "--help"})
		if c.Name() == "completion" {
			for _, sub := range c.Commands() {
				cmds = append(cmds, []string{c.Name(), sub.Name(), "--help"})
			}
		}
	}
	for _, args := range cmds {
		out, errText, code := cli(t, nil, args...)
		if code != ExitOK || errText != "" || !strings.Contains(out, "Usage:") {
			t.Errorf("pluginpool %s: exit %d, stderr %q, stdout %.200q", strings.Join(args, " "), code, errText, out)
		}
	}
	// Man-page quality: every command of ours has a summary, a
	// description and examples (help and completion are cobra's).
	for _, c := range append(root.Commands(), root) {
		if c.Name() == "help" || c.Name() == "completion" {
			continue
		}
		if c.Short == "" || c.Long == "" || c.Example == "" {
			t.Errorf("%s: want Short, Long and Example in its help", c.Name())
		}
	}
}

func TestCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		out, errText, code := cli(t, nil, "completion", shell)
		if code != ExitOK || errText != "" || !strings.Contains(out, "pluginpool") {
			t.Errorf("completion %s: exit %d, stderr %q, %d bytes", shell, code, errText, len(out))
		}
	}
	pipelines := filepath.Join(t.TempDir(), "pool.toml")
	os.WriteFile(pipelines, []byte(`
[plugins.double]
path = "double"

[pipelines.demo]
stages = ["double"]

[pipelines.other]
stages = ["double", "double"]
`), 0o644)
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"map", ""}, []string{"badformat", "double", "logger", "missing", "panicky", "printer", "script"}},
		{[]string{"map", "p"}, []string{"panicky", "printer"}},
		{[]string{"apply", "do"}, []string{"double"}},
		{[]string{"check", "mi"}, []string{"missing"}},
		{[]string{"map", "double", ""}, nil},
		{[]string{"-c", pipelines, "run", ""}, []string{"demo", "other"}},
		{[]string{"-c", pipelines, "run", "o"}, []string{"other"}},
		{[]string{"-c", pipelines, "check", ""}, []string{"double"}},
	} {
		out, _, code := cli(t, nil, append([]string{"__completeNoDesc"}, tc.args...)...)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		got := lines[:len(lines)-1] // the last line is the directive
		if code != ExitOK || strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("completing %q: got %q (exit %d), want %q", tc.args, got, code, tc.want)
		}
	}
}

var statsRE = regexp.MustCompile(`^double: 3 items \(3 ok, 0 failed\) in \S+, \d+ items/s
  retries 0, timeouts 0, worker restarts 0
  task latency p50 \S+, p95 \S+, p99 \S+
  slot +pid +tasks +batches +restarts +busy
  0 +\d+ +\d+ +\d+ +0 +\d+%
  1 +\d+ +\d+ +\d+ +0 +\d+%
$`)

func TestStats(t *testing.T) {
	out, errText, code := cli(t, nil, "map", "--stats", "-w", "2", "--chunk-size", "1", "double", "1", "2", "3")
	if out != "2\n4\n6\n" || code != ExitOK || !statsRE.MatchString(errText) {
		t.Errorf("map --stats: exit %d, stdout %q, stderr:\n%s", code, out, errText)
	}
}

func TestPluginLogs(t *testing.T) {
	// Default level: warnings and up, tagged with plugin, slot and pid.
	_, errText, code := cli(t, nil, "map", "logger", "7")
	warn := regexp.MustCompile(`(?m)^\S+ \[WARN\] +pluginpool\.logger: fixture warning: (.*)$`)
	tagged := func(text string) bool {
		m := warn.FindStringSubmatch(text)
		return m != nil && regexp.MustCompile(`\bpid=\d+\b`).MatchString(m[1]) &&
			strings.Contains(m[1], "slot=0") && strings.Contains(m[1], "item=7")
	}
	if code != ExitOK || !tagged(errText) || strings.Contains(errText, "fixture info") {
		t.Errorf("default level: exit %d, stderr:\n%s", code, errText)
	}
	_, errText, code = cli(t, nil, "--log-level", "info", "map", "logger", "7")
	if code != ExitOK || !tagged(errText) || !strings.Contains(errText, "fixture info") {
		t.Errorf("--log-level info: exit %d, stderr:\n%s", code, errText)
	}
	_, errText, code = cli(t, nil, "--log-level", "error", "map", "logger", "7")
	if code != ExitOK || errText != "" {
		t.Errorf("--log-level error: exit %d, stderr:\n%s", code, errText)
	}
	_, errText, code = cli(t, nil, "--log-json", "map", "logger", "7")
	var rec map[string]any
	if code != ExitOK || json.Unmarshal([]byte(strings.TrimSpace(errText)), &rec) != nil ||
		rec["@module"] != "pluginpool.logger" || rec["@message"] != "fixture warning" || rec["slot"] == nil || rec["pid"] == nil {
		t.Errorf("--log-json: exit %d, stderr:\n%s", code, errText)
	}
}

func TestCheck(t *testing.T) {
	// The script writes to stderr first: once its stdout line fails the
	// handshake it is killed, and a line it had not yet written could not
	// be quoted.
	script := filepath.Join(binDir, "script.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho 'something broke' >&2\necho hello\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	noexec := filepath.Join(t.TempDir(), "noexec")
	if err := os.WriteFile(noexec, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		code ExitCode
		out  string // a part of stdout
		err  string // a part of stderr
	}{
		{[]string{"double"}, ExitOK, "task        1 → 2 in ", ""},
		{[]string{"double"}, ExitOK, "transport   lane: batches on a socket pair of their own", ""},
		{[]string{"printer"}, ExitOK, "task        1 → no value; printed \"Number: 1\" in ", ""},
		{[]string{"printer", "--input", "hello"}, ExitOK, "printed \"Number: hello\"", ""},
		{[]string{filepath.Join(binDir, "double"), "--input", "2.5"}, ExitOK, "task        2.5 → 5 in ", ""},
		{[]string{"double", "--input", "x"}, ExitFailed, "task        \"x\" → failed", "could not decode the sample \"x\""},
		{[]string{"panicky"}, ExitFailed, "task        1 → failed", "the sample task 1 panicked: fixture panic on 1"},
		{[]string{"missing"}, ExitStart, "", "not found: " + filepath.Join(binDir, "missing") + " does not exist"},
		{[]string{noexec}, ExitStart, "", "not executable: " + noexec + " has no execute permission"},
		{[]string{binDir}, ExitStart, "", "is a directory"},
		{[]string{"script"}, ExitStart, "", "not a pluginpool plugin"},
		{[]string{"badformat"}, ExitStart, "", `Init failed: init: config format "no verb" has no verb`},
		{[]string{"nosuch"}, ExitUsage, "", `unknown plugin "nosuch"`},
	} {
		args := append([]string{"check"}, tc.args...)
		out, errText, code := cli(t, nil, args...)
		okLine := strings.HasSuffix(out, " works\n")
		if code != tc.code || !strings.Contains(out, tc.out) || !strings.Contains(errText, tc.err) || okLine != (tc.code == ExitOK) {
			t.Errorf("pluginpool %s: exit %d, stdout:\n%s\nstderr:\n%s\nwant exit %d, stdout containing %q, stderr containing %q",
				strings.Join(args, " "), code, out, errText, tc.code, tc.out, tc.err)
		}
	}
	// The handshake failure says what a plugin must do and shows its stderr.
	_, errText, _ := cli(t, nil, "check", "script")
	for _, want := range []string{"sdk.Serve in Go", "pluginpool.serve in Python", "something broke"} {
		if !strings.Contains(errText, want) {
			t.Errorf("check script: stderr lacks %q:\n%s", want, errText)
		}
	}
}

// TestPlugins lists the configured plugins, one process of each started
// to ask its version: a row per plugin, in name order, with why one cannot
// start, and exit 3 when one cannot.
func TestPlugins(t *testing.T) {
	script := filepath.Join(binDir, "script.sh") // as TestCheck writes it
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho 'something broke' >&2\necho hello\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	out, errText, code := cli(t, nil, "plugins")
	q := regexp.QuoteMeta
	want := []string{
		`^NAME +VERSION +WORKERS +PATH +STATUS$`,
		`^badformat +- +\d+ \(one per core\) +` + q(filepath.Join(binDir, "printer")) + ` +cannot start: .*no verb`,
		`^double +1\.0\.0 +\d+ \(one per core\) +` + q(filepath.Join(binDir, "double")) + ` +ok$`,
		`^logger +0\.0\.1 +1 +` + q(self) + ` +ok$`,
		`^missing +- +\d+ \(one per core\) +` + q(filepath.Join(binDir, "missing")) + ` +cannot start: .*not found`,
		`^panicky +0\.0\.1 +1 +` + q(self) + ` +ok$`,
		`^printer +1\.0\.0 +\d+ \(one per core\) +` + q(filepath.Join(binDir, "printer")) + ` +ok$`,
		`^script +- +\d+ \(one per core\) +` + q(script) + ` +cannot start: .*not a pluginpool plugin`,
	}
	if code != ExitStart {
		t.Errorf("plugins: exit %d, want %d; stderr:\n%s", code, ExitStart, errText)
	}
	// A status may span lines (a start error ends with the plugin's last
	// stderr lines): each row is found in order, from its start.
	at := 0
	for _, re := range want {
		loc := regexp.MustCompile("(?m)" + re).FindStringIndex(out[at:])
		if loc == nil {
			t.Fatalf("plugins: no line matching %s after offset %d; stdout:\n%s", re, at, out)
		}
		at += loc[1]
	}
}

func TestNewPlugin(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a module with go build")
	}
	dir := filepath.Join(t.TempDir(), "foo")
	out, errText, code := cli(t, nil, "new-plugin", "foo", dir)
	if code != ExitOK || out != "" || !strings.Contains(errText, "cd "+dir+"\n") {
		t.Fatalf("new-plugin: exit %d, stdout %q, stderr:\n%s", code, out, errText)
	}
	gomod, _ := os.ReadFile(filepath.Join(dir, "go.mod"))
	checkout, _ := filepath.Abs("../../..")
	if !strings.Contains(string(gomod), "replace github.com/pluginpool/pluginpool => "+checkout+"\n") {
		t.Errorf("go.mod does not replace the SDK with this checkout:\n%s", gomod)
	}

	// Never overwrite: a second run fails and changes nothing.
	os.WriteFile(filepath.Join(dir, "main.go"), []byte("mine"), 0o644)
	_, errText, code = cli(t, nil, "new-plugin", "foo", dir)
	if mine, _ := os.ReadFile(filepath.Join(dir, "main.go")); code != ExitUsage || string(mine) != "mine" || !strings.Contains(errText, "not overwriting") {
		t.Errorf("second new-plugin: exit %d, stderr %q, main.go %.20q", code, errText, mine)
	}
	os.Remove(filepath.Join(dir, "main.go"))
	os.Remove(filepath.Join(dir, "go.mod"))
	os.Remove(filepath.Join(dir, "go.sum"))
	os.Remove(filepath.Join(dir, "main_test.go"))
	if _, errText, code = cli(t, nil, "new-plugin", "foo", dir); code != ExitOK {
		t.Fatalf("new-plugin again: exit %d, %s", code, errText)
	}

	// The next steps it prints: tidy, test, build, check.
	goCmd := func(args ...string) {
		t.Helper()
		cmd := exec.Command(testkit.GoTool(), args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	goCmd("mod", "tidy")
	goCmd("test", "./...")
	goCmd("build", "-o", "foo", ".")
	out, errText, code = cli(t, nil, "check", filepath.Join(dir, "foo"))
	if code != ExitOK || !strings.Contains(out, `task        "hello" → "HELLO" in `) {
		t.Errorf("check: exit %d, stdout:\n%s\nstderr:\n%s", code, out, errText)
	}
	out, errText, code = cli(t, nil, "map", filepath.Join(dir, "foo"), "hello", "world")
	expect(t, []string{"map", "foo", "hello", "world"}, out, errText, code, "\"HELLO\"\n\"WORLD\"\n", "", ExitOK)

	for _, bad := range []string{"Foo", "1x", "a/b", ""} {
		if _, _, code := cli(t, nil, "new-plugin", bad, t.TempDir()); code != ExitUsage {
			t.Errorf("new-plugin %q: exit %d, want %d", bad, code, ExitUsage)
		}
	}
}

// TestMetrics scrapes --metrics-addr while a map runs and sees the
// counters appear and grow.
func TestMetrics(t *testing.T) {
	inR, inW := io.Pipe()
	var out, errb testkit.Buffer
	done := make(chan ExitCode, 1)
	go func() {
		done <- Main(context.Background(),
			[]string{"-c", cfgPath, "--log-level", "info", "map", "-w", "2", "--metrics-addr", "127.0.0.1:0", "double"},
			IOStreams{In: inR, Out: &out, Err: &errb})
	}()
	var url string
	urlRE := regexp.MustCompile(`serving Prometheus metrics: url=(\S+)`)
	testkit.Eventually(t, time.Minute, "the metrics URL in the log", func() bool {
		m := urlRE.FindStringSubmatch(errb.String())
		if m != nil {
			url = m[1]
		}
		return m != nil
	})
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	scrape := func() string {
		resp, err := client.Get(url)
		if err != nil {
			t.Fatalf("scrape: %v", err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("scrape: %s\n%s", resp.Status, b)
		}
		return string(b)
	}
	okItems := regexp.MustCompile(`(?m)^pluginpool_items_total\{plugin="double",result="ok"\} (\d+)$`)
	ok := func(text string) int {
		m := okItems.FindStringSubmatch(text)
		if m == nil {
			return -1
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	feed := func(from, to int) {
		var b strings.Builder
		for i := from; i <= to; i++ {
			fmt.Fprintf(&b, "%d\n", i)
		}
		if _, err := io.WriteString(inW, b.String()); err != nil {
			t.Fatal(err)
		}
	}

	feed(1, 1000)
	var text string
	testkit.Eventually(t, time.Minute, "1000 items in the metrics", func() bool { text = scrape(); return ok(text) >= 1000 })
	for _, want := range []string{
		`pluginpool_items_total{plugin="double",result="failed"} 0`,
		`pluginpool_retries_total{plugin="double"} 0`,
		`pluginpool_timeouts_total{plugin="double"} 0`,
		`pluginpool_worker_restarts_total{plugin="double",slot="0"} 0`,
		`pluginpool_worker_restarts_total{plugin="double",slot="1"} 0`,
		`pluginpool_worker_up{plugin="double",slot="1"} 1`,
		`pluginpool_task_latency_seconds{plugin="double",quantile="0.99"} `,
		`pluginpool_worker_tasks_total{plugin="double",slot="0"} `,
		"process_resident_memory_bytes ",
		"go_goroutines ",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	first := ok(text)
	feed(1001, 3000)
	testkit.Eventually(t, time.Minute, "3000 items in the metrics", func() bool { text = scrape(); return ok(text) >= 3000 })
	if n := ok(text); n <= first {
		t.Errorf("items_total did not grow: %d then %d", first, n)
	}
	tasks := regexp.MustCompile(`(?m)^pluginpool_worker_tasks_total\{plugin="double",slot="\d"\} (\d+)$`).FindAllStringSubmatch(text, -1)
	sum := 0
	for _, m := range tasks {
		n, _ := strconv.Atoi(m[1])
		sum += n
	}
	if len(tasks) != 2 || sum != ok(text) {
		t.Errorf("worker_tasks_total: %q, sum %d, want 2 slots summing to %d", tasks, sum, ok(text))
	}
	inW.Close()
	if code := <-done; code != ExitOK {
		t.Fatalf("exit %d, stderr:\n%s", code, errb.String())
	}
	if n := strings.Count(out.String(), "\n"); n != 3000 {
		t.Errorf("%d result lines, want 3000", n)
	}
	if _, err := client.Get(url); err == nil {
		t.Errorf("the metrics server still answers after the command ended")
	}
}

// Real processes: the CLI binary, with its own copy of double so that the
// processes it leaves, if any, can be told from other tests'.

type procTest struct {
	double string // this test's copy of the double plugin
	config string
}

func newProcTest(t *testing.T) procTest {
	t.Helper()
	dir := t.TempDir()
	data, err := os.ReadFile(filepath.Join(binDir, "double"))
	if err != nil {
		t.Fatal(err)
	}
	pt := procTest{double: filepath.Join(dir, "double"), config: filepath.Join(dir, "pool.toml")}
	if err := os.WriteFile(pt.double, data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pt.config, []byte("[plugins.double]\npath = \"double\"\nworkers = 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return pt
}

func (pt procTest) command(args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(binDir, "pluginpool"), append([]string{"-c", pt.config}, args...)...)
	cmd.Env = append(os.Environ(), "TERM=xterm")
	return cmd
}

// plugins returns the pids of live processes of the test's double.
func (pt procTest) plugins() []int { return testkit.Processes(testkit.Running(pt.double)) }

// noneLeft fails the test if a plugin process outlives the CLI.
func (pt procTest) noneLeft(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for len(pt.plugins()) > 0 {
		if time.Now().After(deadline) {
			pids := pt.plugins()
			for _, pid := range pids {
				syscall.Kill(pid, syscall.SIGKILL)
			}
			t.Fatalf("plugin processes left behind: %v", pids)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// feedForever writes numbered lines to w until a write fails.
func feedForever(w io.WriteCloser) {
	defer w.Close()
	var b []byte
	for i := 1; ; i++ {
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, '\n')
		if len(b) > 32<<10 {
			if _, err := w.Write(b); err != nil {
				return
			}
			b = b[:0]
		}
	}
}

// A plugin that reads stdin gets nothing of the CLI's input: every piped
// line is mapped (issue 8: the host's stdin reached plugins, and `map`
// processed 34,619 of 1,000,000 lines).
func TestStdinNotStolen(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(t.TempDir(), "pool.toml")
	toml := fmt.Sprintf("[plugins.stdinthief]\npath = %q\nworkers = 2\nenv = { %s = \"stdinthief\", GORACE = \"atexit_sleep_ms=0\" }\n", self, fixtureEnv)
	if err := os.WriteFile(config, []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	const n = 100_000
	var in strings.Builder
	for i := range n {
		fmt.Fprintln(&in, i)
	}
	cmd := exec.Command(filepath.Join(binDir, "pluginpool"), "-c", config, "map", "stdinthief")
	cmd.Stdin = strings.NewReader(in.String())
	var out, errb testkit.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if code := testkit.ExitStatus(cmd.Run()); code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
	if out.String() != in.String() {
		t.Errorf("%d of %d lines mapped", strings.Count(out.String(), "\n"), n)
	}
}

// --help says that --metrics-addr without a host listens on every
// interface.
func TestMetricsAddrHelp(t *testing.T) {
	out, _, _ := cli(t, nil, "map", "--help")
	if !strings.Contains(out, "every interface") || !strings.Contains(out, "127.0.0.1:9090") {
		t.Errorf("map --help does not warn that a bare :PORT listens on every interface:\n%s", out)
	}
}

// TestStdoutClosed is `pluginpool map double | head -1` with endless input.
func TestStdoutClosed(t *testing.T) {
	pt := newProcTest(t)
	cmd := pt.command("map", "double")
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	var errb testkit.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go feedForever(stdin)
	line, err := bufio.NewReader(stdout).ReadString('\n')
	stdout.Close()
	if line != "2\n" {
		t.Errorf("first line %q (%v), want \"2\\n\"", line, err)
	}
	code := testkit.ExitStatus(cmd.Wait())
	t.Logf("exit %d", code)
	if code != 141 && code != 0 {
		t.Errorf("exit %d, want 141 (SIGPIPE) or 0", code)
	}
	if errb.String() != "" {
		t.Errorf("stderr %q, want none", errb.String())
	}
	pt.noneLeft(t)
}

// TestInterrupt sends SIGINT mid-run: exit 130, no plugin left.
func TestInterrupt(t *testing.T) {
	pt := newProcTest(t)
	cmd := pt.command("map", "double")
	stdin, _ := cmd.StdinPipe()
	var out, errb testkit.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	io.WriteString(stdin, "1\n2\n3\n") // and more never comes
	testkit.Eventually(t, time.Minute, "two plugin processes", func() bool { return len(pt.plugins()) == 2 })
	time.Sleep(50 * time.Millisecond) // let the items through
	cmd.Process.Signal(os.Interrupt)
	if code := testkit.ExitStatus(cmd.Wait()); code != 130 {
		t.Errorf("exit %d, want 130; stderr %q", code, errb.String())
	}
	pt.noneLeft(t)
}

// TestProgressBar runs map with stderr on a pseudo-terminal and on a pipe:
// the bar shows on the terminal only, unless a flag says otherwise.
func TestProgressBar(t *testing.T) {
	pt := newProcTest(t)
	for _, tc := range []struct {
		tty  bool
		flag string
		bar  bool
	}{
		{true, "", true},
		{false, "", false},
		{true, "--no-progress", false},
		{false, "--progress", true},
	} {
		args := []string{"map", "double"}
		if tc.flag != "" {
			args = append(args, tc.flag)
		}
		cmd := pt.command(args...)
		stdin, _ := cmd.StdinPipe()
		var out testkit.Buffer
		cmd.Stdout = &out
		var stderr func() string
		if tc.tty {
			ptmx, tty, err := pty.Open()
			if err != nil {
				t.Skipf("no pseudo-terminal: %v", err)
			}
			cmd.Stderr = tty
			var got testkit.Buffer
			copied := make(chan struct{})
			go func() {
				io.Copy(&got, ptmx) // ends with EIO once the CLI exits
				close(copied)
			}()
			defer ptmx.Close()
			stderr = func() string { tty.Close(); <-copied; return got.String() }
		} else {
			var got testkit.Buffer
			cmd.Stderr = &got
			stderr = got.String
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Items, then a pause of a few ticks so the bar draws, then more.
		io.WriteString(stdin, "1\n2\n3\n")
		time.Sleep(4 * progressTick)
		io.WriteString(stdin, "4\n5\n")
		stdin.Close()
		err := cmd.Wait()
		text := stderr()
		// "double (5, 25 items/s) [0s]", or "0 items/hr" before any item.
		hasBar := regexp.MustCompile(`double \(\d+, \d+ items/`).MatchString(text)
		if testkit.ExitStatus(err) != 0 || out.String() != "2\n4\n6\n8\n10\n" || hasBar != tc.bar {
			t.Errorf("tty %v %s: exit %d, stdout %q, stderr %q; want a bar: %v", tc.tty, tc.flag, testkit.ExitStatus(err), out.String(), text, tc.bar)
		}
	}
	pt.noneLeft(t)
}

// Pure functions and parts, in memory.

type fakeStats pool.Stats

func (f fakeStats) Stats() pool.Stats { return pool.Stats(f) }

func TestPrintStats(t *testing.T) {
	var b strings.Builder
	printStats(&b, pool.Stats{
		Plugin: "double", Succeeded: 999, Failed: 1, Retries: 2, Timeouts: 1, Restarts: 1,
		P50: 1448154 * time.Nanosecond, P95: 2 * time.Millisecond, P99: 123456789,
		Workers: []pool.WorkerStats{
			{Slot: 0, Pid: 41101, Tasks: 600, Batches: 7, Restarts: 1, Busy: 1500 * time.Millisecond},
			{Slot: 1, Pid: 0, Tasks: 400, Batches: 5, Busy: 500 * time.Millisecond},
		},
	}, 2*time.Second)
	want := `double: 1000 items (999 ok, 1 failed) in 2s, 500 items/s
  retries 2, timeouts 1, worker restarts 1
  task latency p50 1.45ms, p95 2ms, p99 123ms
  slot  pid    tasks  batches  restarts  busy
  0     41101  600    7        1         75%
  1     -      400    5        0         25%
`
	if b.String() != want {
		t.Errorf("printStats:\n%s\nwant:\n%s", b.String(), want)
	}
}

// On a cluster a worker is a daemon on some machine: named by id and
// host, its restarts its own.
func TestPrintStatsCluster(t *testing.T) {
	var b strings.Builder
	printStats(&b, pool.Stats{
		Plugin: "double", Succeeded: 1000,
		Workers: []pool.WorkerStats{
			{Slot: 0, ID: "a-14569-L308pM", Host: "a", Pid: 14569, Tasks: 600, Batches: 7, Busy: time.Second},
			{Slot: 1, ID: "b-2210-x8Qw1z", Pid: 0, Tasks: 400, Batches: 5, Busy: 500 * time.Millisecond},
		},
	}, 2*time.Second)
	want := `double: 1000 items (1000 ok, 0 failed) in 2s, 500 items/s
  retries 0, timeouts 0, worker restarts 0
  task latency p50 0s, p95 0s, p99 0s
  slot  pid    tasks  batches  restarts  busy  worker          host
  0     14569  600    7        -         50%   a-14569-L308pM  a
  1     -      400    5        -         25%   b-2210-x8Qw1z   -
`
	if b.String() != want {
		t.Errorf("printStats:\n%s\nwant:\n%s", b.String(), want)
	}
}

// TestMetricsStages registers two pools of one plugin, as run does for a
// pipeline's stages, and gathers their metrics apart by stage.
func TestMetricsStages(t *testing.T) {
	g := &globalOptions{metricsAddr: "127.0.0.1:0", logLevel: "warn", io: IOStreams{Err: io.Discard}}
	m, err := startMetrics(g, "stage")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	m.Add(fakeStats{Plugin: "double", Succeeded: 5, Workers: []pool.WorkerStats{{Slot: 0, Pid: 1, Tasks: 5}}}, "1")
	m.Add(fakeStats{Plugin: "double", Succeeded: 3, Failed: 2, Workers: []pool.WorkerStats{{Slot: 0, Tasks: 5, Restarts: 4}}}, "2")
	resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Get("http://" + m.Addr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		`pluginpool_items_total{plugin="double",result="ok",stage="1"} 5`,
		`pluginpool_items_total{plugin="double",result="ok",stage="2"} 3`,
		`pluginpool_items_total{plugin="double",result="failed",stage="2"} 2`,
		`pluginpool_worker_restarts_total{plugin="double",slot="0",stage="2"} 4`,
		`pluginpool_worker_up{plugin="double",slot="0",stage="1"} 1`,
		`pluginpool_worker_up{plugin="double",slot="0",stage="2"} 0`,
	} {
		if !strings.Contains(string(body), want+"\n") {
			t.Errorf("metrics lack %q", want)
		}
	}
	if t.Failed() {
		t.Logf("metrics:\n%s", body)
	}
}

// TestProgressWriter: with a bar on, a write to stderr wipes the bar first
// and comes out whole; Finish wipes the bar and restores stderr.
func TestProgressWriter(t *testing.T) {
	var errb testkit.Buffer
	g := &globalOptions{io: IOStreams{Err: &errb, ErrIsTerminal: true}}
	t.Setenv("TERM", "xterm")
	p := newProgress(g, "double", 10)
	if p == nil {
		t.Fatal("no bar with stderr a terminal")
	}
	p.Add(4)
	testkit.Eventually(t, time.Minute, "a bar", func() bool { return strings.Contains(errb.String(), "(4/10, ") })
	fmt.Fprintf(g.io.Err, "pluginpool: line 3: bad\n")
	p.Finish()
	if g.io.Err != &errb {
		t.Error("Finish did not restore stderr")
	}
	text := errb.String()
	i := strings.Index(text, "pluginpool: line 3: bad\n")
	if i < 0 || !strings.HasSuffix(text[:i], "\x1b[2K\r") || !strings.HasSuffix(text, "\x1b[2K\r") {
		t.Errorf("stderr %q: want the bar wiped before the line and at the end", text)
	}
	for _, mode := range []progressMode{progressOff, progressAuto} {
		g := &globalOptions{progress: mode, io: IOStreams{Err: &errb}}
		if mode == progressOff {
			g.io.ErrIsTerminal = true
		}
		if p := newProgress(g, "double", 10); p != nil {
			p.Finish()
			t.Errorf("mode %d: a bar where none belongs", mode)
		}
	}
}
