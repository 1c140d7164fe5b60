package pool_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pluginpool/pluginpool/host/pool"
)

// Every way a plugin can fail to start is a *StartError matching ErrStart
// and the sentinel for the step that failed, reported within a bounded
// time, with nothing left running and no retry of a failed first start.
func TestStartFailures(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256File(t, exe)
	trueExe := "/bin/true"
	if _, err := os.Stat(trueExe); err != nil {
		trueExe = "/usr/bin/true"
	}

	cases := []struct {
		name    string
		fixture string
		edit    func(t *testing.T, cfg *pool.Config)
		want    error
		msg     []string // in the error's message
		stderr  string   // in StartError.Stderr
	}{
		{name: "missing", fixture: "double", want: pool.ErrNotFound, msg: []string{"no such file"},
			edit: func(t *testing.T, cfg *pool.Config) { cfg.Path = filepath.Join(t.TempDir(), "nope") }},
		{name: "not executable", fixture: "double", want: pool.ErrNotFound, msg: []string{"not executable"},
			edit: func(t *testing.T, cfg *pool.Config) {
				cfg.Path = filepath.Join(t.TempDir(), "plugin")
				if err := os.WriteFile(cfg.Path, []byte("#!/bin/sh\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "directory", fixture: "double", want: pool.ErrNotFound, msg: []string{"is a directory"},
			edit: func(t *testing.T, cfg *pool.Config) { cfg.Path = t.TempDir() }},
		{name: "coreutils true", fixture: "double", want: pool.ErrHandshake, msg: []string{"exited", "sdk.Serve"},
			edit: func(t *testing.T, cfg *pool.Config) { cfg.Path = trueExe }},
		{name: "stdout before serve", fixture: "stdout", want: pool.ErrHandshake,
			msg: []string{"hello from a plugin that prints too early", "must not write to stdout"}},
		{name: "exits at start", fixture: "exitstart", want: pool.ErrHandshake,
			msg: []string{"exit status 3"}, stderr: "missing license file"},
		{name: "init fails", fixture: "initfail", want: pool.ErrInit, msg: []string{"database unreachable"}},
		{name: "checksum", fixture: "double", want: pool.ErrChecksum, msg: []string{sum, strings.Repeat("0", 64)},
			edit: func(t *testing.T, cfg *pool.Config) { cfg.SHA256 = strings.Repeat("0", 64) }},
		{name: "tcp", fixture: "tcp", want: pool.ErrHandshake, msg: []string{"listens on tcp 127.0.0.1:1", "PLUGIN_UNIX_SOCKET_DIR"}},
		{name: "start timeout", fixture: "slowstart", want: pool.ErrStartTimeout, msg: []string{"start_timeout"},
			edit: func(t *testing.T, cfg *pool.Config) { cfg.StartTimeout = 500 * time.Millisecond }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			cfg := fixture(t, c.fixture)
			cfg.Workers = 2
			if c.edit != nil {
				c.edit(t, &cfg)
			}
			var p *pool.Pool
			var err error
			bounded(t, "Start", func() { p, err = pool.Start(context.Background(), cfg) })
			if err == nil {
				p.Terminate()
				t.Fatal("Start succeeded")
			}
			var se *pool.StartError
			if !errors.As(err, &se) || !errors.Is(err, pool.ErrStart) || !errors.Is(err, c.want) {
				t.Fatalf("Start: %v (%T); want a *StartError matching ErrStart and %v", err, err, c.want)
			}
			if se.Plugin != c.fixture || se.Path != cfg.Path {
				t.Errorf("StartError names plugin %q, path %q; want %q, %q", se.Plugin, se.Path, c.fixture, cfg.Path)
			}
			for _, m := range c.msg {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q lacks %q", err, m)
				}
			}
			if c.stderr != "" && !slices.Contains(se.Stderr, c.stderr) {
				t.Errorf("StartError.Stderr = %q; want it to hold %q", se.Stderr, c.stderr)
			}
			if n := counted(t, cfg, "launches"); n > cfg.Workers {
				t.Errorf("%d processes launched for %d workers: a failed first start was retried", n, cfg.Workers)
			}
			if live := processes(t, cfg); len(live) > 0 {
				t.Errorf("processes left running after a failed Start: %v", live)
			}
		})
	}
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// The right checksum starts.
func TestChecksumMatch(t *testing.T) {
	cfg := fixture(t, "double")
	cfg.SHA256 = strings.ToUpper(sha256File(t, cfg.Path))
	p := start(t, cfg)
	if r, err := p.Apply(context.Background(), []byte("4")); err != nil || string(r.Value) != "8" {
		t.Fatalf("Apply: %q, %v", r.Value, err)
	}
}
