package pool

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// debianPython is Debian's interpreter, which Python plugins run under here.
const debianPython = "/usr/bin/python3"

func needPython(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(debianPython); err != nil {
		t.Skipf("SKIPPED: %s is not installed", debianPython)
	}
}

// A verified Python script runs from the private copy: the interpreter
// reads the copy (the kernel hands it the copy's path), and modules next
// to the original import, as sys.path[0] is the copy's directory, where
// they are linked.
func TestVerifiedCopyPython(t *testing.T) {
	needPython(t)
	src := t.TempDir()
	script := filepath.Join(src, "plugin.py")
	body := []byte("#!" + debianPython + "\nimport sys, helper\nprint(helper.VALUE, sys.path[0], __file__)\n")
	if err := os.WriteFile(script, body, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "helper.py"), []byte("VALUE = 'from helper'\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	dst := filepath.Join(t.TempDir(), "exe")
	copyPath, err := verifiedCopy(script, hex.EncodeToString(sum[:]), dst)
	if err != nil {
		t.Fatal(err)
	}
	// The original is swapped: what runs is still what was checked.
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho swapped\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(copyPath).CombinedOutput()
	if want := "from helper " + dst + " " + copyPath + "\n"; err != nil || string(out) != want {
		t.Errorf("running the copy: %q, %v; want %q", out, err, want)
	}

	if _, err := verifiedCopy(script, hex.EncodeToString(sum[:]), filepath.Join(t.TempDir(), "exe")); !errors.Is(err, ErrChecksum) {
		t.Errorf("copying the swapped script: %v; want ErrChecksum", err)
	}
}

// Under RLIMIT_DATA, Python raises MemoryError, and its dying words are
// recognised as running out of memory; the limit leaves room for its
// normal work.
func TestRlimitPython(t *testing.T) {
	needPython(t)
	if runtime.GOOS != "linux" {
		t.Skip("RLIMIT_DATA is applied on Linux only")
	}
	run := func(mib string) (string, error) {
		path, args := withDataLimit(debianPython, []string{"-c", "b = bytearray(" + mib + " << 20); print('ok')"}, 256<<20)
		out, err := (&exec.Cmd{Path: path, Args: args}).CombinedOutput()
		return string(out), err
	}
	if out, err := run("100"); err != nil || out != "ok\n" {
		t.Errorf("100 MiB under 256 MiB: %q, %v", out, err)
	}
	out, err := run("300")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if err == nil || !slices.ContainsFunc(lines, outOfMemory) {
		t.Errorf("300 MiB under 256 MiB: %q, %v; want a MemoryError recognised by outOfMemory", out, err)
	}
}

// The cgroup files the pool reads, as the kernel writes them (the memory
// controller is not delegated on the machine these tests were written on,
// so a real OOM kill under memory.max is not exercised here).
func TestCgroupFiles(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("cgroups are Linux-only")
	}
	dir := t.TempDir()
	w := &workerCgroup{dir: dir}
	if w.oomKilled() {
		t.Error("oomKilled without memory.events")
	}
	events := "low 0\nhigh 0\nmax 12\noom 1\noom_kill 0\noom_group_kill 0\n"
	os.WriteFile(filepath.Join(dir, "memory.events"), []byte(events), 0o644)
	if w.oomKilled() {
		t.Errorf("oomKilled with oom_kill 0")
	}
	os.WriteFile(filepath.Join(dir, "memory.events"), []byte(strings.Replace(events, "oom_kill 0", "oom_kill 2", 1)), 0o644)
	if !w.oomKilled() {
		t.Errorf("not oomKilled with oom_kill 2")
	}
	if err := writeControl(filepath.Join(dir, "memory.swap.max"), "0"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("writing a control file that does not exist: %v; want ErrNotExist, never creating it", err)
	}
	if got := unescapeMount(`/sys/fs/my\040cgroup`); got != "/sys/fs/my cgroup" {
		t.Errorf("unescapeMount: %q", got)
	}
}
