package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pluginpool/pluginpool/internal/python"
	"github.com/pluginpool/pluginpool/internal/python/pythontest"
)

// The README's Python example: the seed's process_task, unchanged, run by
// path with the defaults.
func TestPythonSeedExample(t *testing.T) {
	pythontest.Interpreter(t, ".")
	script, _ := filepath.Abs("../../../examples/python/double.py")
	args := []string{"map", script, "1", "2", "3", "4", "5"}
	out, errText, code := cli(t, nil, args...)
	expect(t, args, out, errText, code, "2\n4\n6\n8\n10\n", "", ExitOK)

	args = []string{"map", script, "1", "x", "2.5"}
	out, errText, code = cli(t, nil, args...)
	want := "pluginpool: item 2 (x): double.py: bad input: cannot decode input \"x\" as int: want int, got a JSON string\n" +
		"pluginpool: item 3 (2.5): double.py: bad input: cannot decode input 2.5 as int: want int, got a JSON number\n" +
		"pluginpool: 2 of 3 items failed\n"
	expect(t, args, out, errText, code, "2\n", want, ExitFailed)
}

// new-plugin --lang python writes a plugin whose test passes and which
// check and map run, by the next steps it prints.
func TestNewPythonPlugin(t *testing.T) {
	py := pythontest.Interpreter(t, ".")
	dir := filepath.Join(t.TempDir(), "up")
	out, errText, code := cli(t, nil, "new-plugin", "--lang", "python", "my-upper", dir)
	if code != ExitOK || out != "" {
		t.Fatalf("new-plugin: exit %d, stdout %q, stderr:\n%s", code, out, errText)
	}
	checkout, _ := filepath.Abs("../../..")
	for _, want := range []string{
		"my_upper.py", "test_my_upper.py",
		"PYTHONPATH=" + filepath.Join(checkout, "sdk", "python") + " " + py.Path + " -m unittest\n",
		"pluginpool check ./my_upper.py && pluginpool map ./my_upper.py hello world\n",
		"path = \"" + filepath.Join(dir, "my_upper.py") + "\"",
	} {
		if !strings.Contains(errText, want) {
			t.Errorf("new-plugin's next steps lack %q:\n%s", want, errText)
		}
	}
	test := exec.Command(py.Path, "-m", "unittest")
	test.Dir = dir
	test.Env = append(os.Environ(), "PYTHONPATH="+filepath.Join(checkout, "sdk", "python"), "PYTHONDONTWRITEBYTECODE=1")
	if out, err := test.CombinedOutput(); err != nil {
		t.Fatalf("the generated test: %v\n%s", err, out)
	}

	script := filepath.Join(dir, "my_upper.py")
	out, errText, code = cli(t, nil, "check", script)
	if code != ExitOK || !strings.Contains(out, `task        "hello" → "HELLO" in `) || !strings.Contains(out, "sdk         python/") || !strings.Contains(out, "python      "+py.Path+" (Python "+py.Version+")") {
		t.Errorf("check: exit %d, stdout:\n%s\nstderr:\n%s", code, out, errText)
	}
	args := []string{"map", script, "hello", "world"}
	out, errText, code = cli(t, nil, args...)
	expect(t, args, out, errText, code, "\"HELLO\"\n\"WORLD\"\n", "", ExitOK)

	if _, errText, code := cli(t, nil, "new-plugin", "--lang", "python", "--module", "x", "other", t.TempDir()); code != ExitUsage || !strings.Contains(errText, "--module is for Go plugins") {
		t.Errorf("--lang python --module: exit %d, %s", code, errText)
	}
	if _, errText, code := cli(t, nil, "new-plugin", "--lang", "rust", "other", t.TempDir()); code != ExitUsage || !strings.Contains(errText, `--lang "rust": want go or python`) {
		t.Errorf("--lang rust: exit %d, %s", code, errText)
	}
}

// Without a usable Python, check and map say so, with what to do.
func TestPythonPluginWithoutPython(t *testing.T) {
	script, _ := filepath.Abs("../../../examples/python/double.py")
	t.Setenv(python.EnvPython, "/nonexistent/python3")
	for _, args := range [][]string{{"check", script}, {"map", script, "1"}} {
		out, errText, code := cli(t, nil, args...)
		if code != ExitStart || out != "" {
			t.Errorf("pluginpool %s: exit %d, stdout %q; want exit %d", strings.Join(args, " "), code, out, ExitStart)
		}
		for _, want := range []string{"no Python interpreter that can import grpc and google.protobuf", "$PLUGINPOOL_PYTHON (/nonexistent/python3)", "apt-get install python3-grpcio python3-protobuf"} {
			if !strings.Contains(errText, want) {
				t.Errorf("pluginpool %s: stderr lacks %q:\n%s", strings.Join(args, " "), want, errText)
			}
		}
	}
}

// A Python plugin that prints before serve() fails the handshake with a
// hint in Python's terms.
func TestPythonPluginThatPrintsFirst(t *testing.T) {
	pythontest.Interpreter(t, ".")
	script := filepath.Join(t.TempDir(), "chatty.py")
	os.WriteFile(script, []byte("import pluginpool\nprint('hello')\npluginpool.serve(lambda x: x)\n"), 0o644)
	_, errText, code := cli(t, nil, "check", script)
	if code != ExitStart || !strings.Contains(errText, "A Python plugin must call pluginpool.serve(task, ...) and print nothing before it") {
		t.Errorf("check chatty.py: exit %d, stderr:\n%s", code, errText)
	}
}
