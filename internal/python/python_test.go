package python

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakePython writes an executable at path that answers the probe as an
// interpreter of version that lacks the modules in missing.
func fakePython(t *testing.T, path, version, missing string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	code := "0"
	if missing != "" {
		code = "1"
	}
	script := "#!/bin/sh\necho " + version + "\necho '" + missing + "'\nexit " + code + "\n"
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
}

func TestFindPrefersVenvAndSaysWhatIsMissing(t *testing.T) {
	root := t.TempDir()
	script := filepath.Join(root, "proj", "src", "plugin.py")
	fakePython(t, filepath.Join(root, "proj", ".venv", "bin", "python"), "3.12.1", "")
	t.Setenv(EnvPython, "")
	t.Setenv("VIRTUAL_ENV", "")
	py, err := Find(context.Background(), filepath.Dir(script))
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(root, "proj", ".venv", "bin", "python"); py.Path != want || py.Version != "3.12.1" {
		t.Errorf("Find = %+v; want the nearest .venv, %s", py, want)
	}

	bad := filepath.Join(root, "bad", "python")
	fakePython(t, bad, "3.8.10", "grpc and google.protobuf")
	t.Setenv(EnvPython, bad)
	_, err = Find(context.Background(), filepath.Dir(script))
	var nf *NotFoundError
	if !errors.As(err, &nf) || !errors.Is(err, ErrNoInterpreter) {
		t.Fatalf("Find with a bad $%s: %v; want a *NotFoundError", EnvPython, err)
	}
	// $PLUGINPOOL_PYTHON is an order: nothing else is tried.
	if len(nf.Tried) != 1 || !strings.Contains(nf.Tried[0], "Python 3.8.10 cannot import grpc and google.protobuf") {
		t.Errorf("tried %q; want only $%s, saying what it lacks", nf.Tried, EnvPython)
	}
	for _, hint := range []string{"apt-get install python3-grpcio python3-protobuf", "pip install grpcio protobuf", EnvPython} {
		if !strings.Contains(err.Error(), hint) {
			t.Errorf("error %q does not mention %q", err, hint)
		}
	}
}

func TestFindRejectsOldAndBrokenInterpreters(t *testing.T) {
	dir := t.TempDir()
	old := filepath.Join(dir, "old")
	fakePython(t, old, "3.8.1", "")
	os.WriteFile(filepath.Join(dir, "old"), []byte("#!/bin/sh\necho 3.8.1\necho\nexit 1\n"), 0o755)
	t.Setenv(EnvPython, old)
	if _, err := Find(context.Background(), dir); err == nil || !strings.Contains(err.Error(), "too old") {
		t.Errorf("an old Python: %v; want too old", err)
	}
	broken := filepath.Join(dir, "broken")
	os.WriteFile(broken, []byte("#!/bin/sh\necho 'bash: python: not here' >&2\nexit 127\n"), 0o755)
	t.Setenv(EnvPython, broken)
	if _, err := Find(context.Background(), dir); err == nil || !strings.Contains(err.Error(), "not a working Python: bash: python: not here") {
		t.Errorf("a broken Python: %v; want its stderr", err)
	}
}

func TestEnvPutsTheSDKFirst(t *testing.T) {
	got := Env([]string{"A=1", "PYTHONPATH=/x", "PYTHONPATH=/y"}, "/sdk")
	if last := got[len(got)-1]; last != "PYTHONPATH=/sdk"+string(os.PathListSeparator)+"/y" {
		t.Errorf("Env: %q; want the SDK before the PYTHONPATH that wins", got)
	}
	if got := Env([]string{"A=1"}, "/sdk"); got[len(got)-1] != "PYTHONPATH=/sdk" {
		t.Errorf("Env without PYTHONPATH: %q", got)
	}
}

func TestSDKPathHoldsTheEmbeddedPackage(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	t.Setenv("HOME", t.TempDir())
	dir, err := extract()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"__init__.py", "_serve.py", "worker_pb2.py", "py.typed"} {
		want, err := os.ReadFile(filepath.Join("..", "..", "sdk", "python", "pluginpool", f))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(dir, "pluginpool", f))
		if err != nil || string(got) != string(want) {
			t.Errorf("%s in %s differs from sdk/python's (%v)", f, dir, err)
		}
	}
	again, err := extract()
	if err != nil || again != dir {
		t.Errorf("second extract: %s, %v; want the same directory %s", again, err, dir)
	}
}

func TestScriptKinds(t *testing.T) {
	dir := t.TempDir()
	py := filepath.Join(dir, "tool")
	os.WriteFile(py, []byte("#!/usr/bin/env python3\nimport pluginpool\n"), 0o755)
	sh := filepath.Join(dir, "tool.sh")
	os.WriteFile(sh, []byte("#!/bin/sh\nexit 0\n"), 0o755)
	if !UsesPython(py) || UsesPython(sh) || UsesPython(filepath.Join(dir, "missing")) {
		t.Errorf("UsesPython: %v %v; want true for a python shebang only", UsesPython(py), UsesPython(sh))
	}
	if !IsScript("a/b.py") || IsScript("a/b") {
		t.Error("IsScript: want .py files only")
	}
}
