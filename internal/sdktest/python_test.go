package sdktest_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/pluginpool/pluginpool/host/pool"
)

// A Python plugin with a sha256 runs from the host's verified copy of the
// script (the interpreter reads the copy, its neighbours linked beside it),
// and a changed script does not start.
func TestVerifiedPythonScript(t *testing.T) {
	var py implementation
	for _, im := range implementations {
		if im.name == "python" {
			py = im
		}
	}
	path, env := py.plugin(t)
	body, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	r := &run{T: t, impl: py, path: path, env: env, dir: t.TempDir()}
	cfg, _, _ := r.config("double")
	cfg.SHA256 = hex.EncodeToString(sum[:])
	p := r.start(cfg)
	r.value(r.mapAll(p, "21"), 0, "42")

	// The same digest for a changed script: refused before it runs.
	changed := filepath.Join(t.TempDir(), "plugins.py")
	if err := os.WriteFile(changed, append(body, "\n# changed\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg.Path = changed
	ctx, cancel := context.WithTimeout(context.Background(), hangBound)
	defer cancel()
	if p, err := pool.Start(ctx, cfg); !errors.Is(err, pool.ErrChecksum) {
		if err == nil {
			p.Terminate()
		}
		t.Errorf("Start with a changed script: %v; want ErrChecksum", err)
	}
}
