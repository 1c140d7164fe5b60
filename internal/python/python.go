// Package python finds a Python interpreter that can run pluginpool's
// Python plugins, and the copy of the Python SDK the host ships (see
// sdk/python), for host/pool to start `.py` plugins with.
//
// A plugin written in Python needs an interpreter that can import grpc and
// google.protobuf (grpcio and protobuf). On many machines the first
// `python3` on PATH cannot (a pyenv or conda interpreter without them)
// while another can (Debian's /usr/bin/python3 with python3-grpcio), so
// Find tries, in order, and takes the first that can:
//
//  1. $PLUGINPOOL_PYTHON, if set (and then nothing else: it is an order);
//  2. .venv/bin/python in the script's directory or the nearest parent
//     that has one (python -m venv .venv, uv, poetry);
//  3. $VIRTUAL_ENV/bin/python (an activated virtualenv);
//  4. python3 on PATH (python, if there is no python3);
//  5. /usr/bin/python3, /usr/local/bin/python3.
package python

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	pysdk "github.com/pluginpool/pluginpool/sdk/python"
)

// ErrNoInterpreter: no candidate interpreter can import the SDK's
// dependencies. The *NotFoundError says what each candidate lacked.
var ErrNoInterpreter = errors.New("no Python interpreter can run the plugin")

// EnvPython names the interpreter to use, overriding the search.
const EnvPython = "PLUGINPOOL_PYTHON"

// Interpreter is a Python that can run plugins.
type Interpreter struct {
	Path    string // as found: on PATH, in a venv, or $PLUGINPOOL_PYTHON
	Version string // e.g. "3.11.2"
	// Executable is the interpreter's own sys.executable, which the host
	// starts plugins with: for a pyenv shim, the real interpreter behind
	// it (a shim costs ~50-400 ms of bash per process start).
	Executable string
}

// NotFoundError lists the interpreters tried and why each cannot run a
// plugin.
type NotFoundError struct {
	Tried []string // "python3 (/root/.pyenv/shims/python3): Python 3.11.7 cannot import grpc"
}

func (e *NotFoundError) Error() string {
	var b strings.Builder
	b.WriteString("no Python interpreter that can import grpc and google.protobuf")
	if len(e.Tried) == 0 {
		b.WriteString(": none found (no python3 on PATH)")
	} else {
		b.WriteString("; tried:\n    ")
		b.WriteString(strings.Join(e.Tried, "\n    "))
	}
	b.WriteString("\n  Install grpcio and protobuf for one of them (Debian/Ubuntu: apt-get install python3-grpcio python3-protobuf;" +
		" elsewhere: pip install grpcio protobuf, in a .venv beside the plugin), or set " + EnvPython + " to an interpreter that has them")
	return b.String()
}

func (e *NotFoundError) Is(target error) bool { return target == ErrNoInterpreter }

// IsScript reports whether path is run through Find's interpreter: a file
// whose name ends in .py.
func IsScript(path string) bool { return strings.HasSuffix(path, ".py") }

// Find returns the first candidate interpreter (see the package comment)
// that can run a plugin script in dir. Results are cached per interpreter
// for the life of the process: a probe starts the interpreter once
// (~20 ms; a pyenv shim adds ~50 ms).
func Find(ctx context.Context, dir string) (Interpreter, error) {
	cs := candidates(dir)
	// Probed together: a pyenv shim that cannot run plugins costs its
	// ~0.5 s only once, not once per candidate tried before the winner.
	results := make([]probeResult, len(cs))
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = probe(ctx, c.path)
		}()
	}
	wg.Wait()
	var tried []string
	for i, c := range cs {
		r := results[i]
		if r.err == nil {
			exe := r.executable
			if exe == "" || !isFile(exe) {
				exe = c.path
			}
			return Interpreter{Path: c.path, Version: r.version, Executable: exe}, nil
		}
		if ctx.Err() != nil {
			return Interpreter{}, ctx.Err()
		}
		tried = append(tried, fmt.Sprintf("%s (%s): %v", c.name, c.path, r.err))
		if c.only {
			break
		}
	}
	return Interpreter{}, &NotFoundError{Tried: tried}
}

type candidate struct {
	name, path string
	only       bool // the user named it: try nothing else
}

func candidates(dir string) []candidate {
	if p := os.Getenv(EnvPython); p != "" {
		if !strings.ContainsRune(p, filepath.Separator) {
			if lp, err := exec.LookPath(p); err == nil {
				p = lp
			}
		}
		return []candidate{{name: "$" + EnvPython, path: p, only: true}}
	}
	var cs []candidate
	if abs, err := filepath.Abs(dir); err == nil {
		for d := abs; ; {
			if py := filepath.Join(d, ".venv", "bin", "python"); isFile(py) {
				cs = append(cs, candidate{name: ".venv", path: py})
				break
			}
			parent := filepath.Dir(d)
			if parent == d {
				break
			}
			d = parent
		}
	}
	if v := os.Getenv("VIRTUAL_ENV"); v != "" {
		cs = append(cs, candidate{name: "$VIRTUAL_ENV", path: filepath.Join(v, "bin", "python")})
	}
	// python only where there is no python3: where both are, they are the
	// same installation (or python is Python 2), and each probe of a pyenv
	// shim costs ~0.1 s of CPU.
	if p, err := exec.LookPath("python3"); err == nil {
		cs = append(cs, candidate{name: "python3 on PATH", path: p})
	} else if p, err := exec.LookPath("python"); err == nil {
		cs = append(cs, candidate{name: "python on PATH", path: p})
	}
	for _, p := range []string{"/usr/bin/python3", "/usr/local/bin/python3"} {
		if isFile(p) {
			cs = append(cs, candidate{name: p, path: p})
		}
	}
	// The same path reached twice (python3 on PATH is /usr/bin/python3, a venv's
	// symlink to the system one) is probed once; a venv's link is kept
	// apart, as it sees other packages.
	seen := map[string]bool{}
	out := cs[:0]
	for _, c := range cs {
		key := c.path
		if !seen[key] {
			seen[key] = true
			out = append(out, c)
		}
	}
	return out
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// probeScript prints the interpreter's version, the modules it lacks
// and sys.executable, one a line, and exits 1 if it cannot run plugins.
// find_spec does not import grpc, which takes ~100 ms.
const probeScript = `import sys, importlib.util as u
def has(m):
    try:
        return u.find_spec(m) is not None
    except ImportError:
        return False
missing = [m for m in ("grpc", "google.protobuf") if not has(m)]
print(sys.version.split()[0])
print(" and ".join(missing))
print(sys.executable)
sys.exit(1 if missing or sys.version_info < (3, 9) else 0)
`

type probeResult struct {
	version    string
	executable string
	err        error
}

// The probes of this process, by interpreter path. An entry is a channel
// closed when its result is in: concurrent Finds share one probe.
var (
	probeMu    sync.Mutex
	probeCache = map[string]*probeEntry{}
)

type probeEntry struct {
	done chan struct{}
	r    probeResult
}

// probeTimeout bounds one probe. Measured: 20 ms warm, up to ~3 s for a
// pyenv shim on a loaded machine with a cold page cache.
const probeTimeout = 20 * time.Second

func probe(ctx context.Context, path string) probeResult {
	probeMu.Lock()
	e, ok := probeCache[path]
	if !ok {
		e = &probeEntry{done: make(chan struct{})}
		probeCache[path] = e
	}
	probeMu.Unlock()
	if ok {
		select {
		case <-e.done:
			return e.r
		case <-ctx.Done():
			return probeResult{err: ctx.Err()}
		}
	}
	e.r = run(ctx, path)
	if ctx.Err() != nil {
		// Cancelled, not answered: the next Find probes again.
		probeMu.Lock()
		delete(probeCache, path)
		probeMu.Unlock()
	}
	close(e.done)
	return e.r
}

// run starts the interpreter at path with probeScript.
func run(ctx context.Context, path string) probeResult {
	pctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	cmd := exec.CommandContext(pctx, path, "-c", probeScript)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	version := lines[0]
	var r probeResult
	switch {
	case ctx.Err() != nil:
		r.err = ctx.Err()
	case pctx.Err() != nil:
		r.err = fmt.Errorf("did not answer within %s", probeTimeout)
	case err == nil:
		r.version = version
		if len(lines) > 2 {
			r.executable = strings.TrimSpace(lines[2])
		}
	case version == "" || !strings.Contains(version, "."):
		msg := strings.TrimSpace(errOut.String())
		if i := strings.LastIndexByte(msg, '\n'); i >= 0 {
			msg = msg[i+1:]
		}
		if msg == "" {
			msg = err.Error()
		}
		r.err = fmt.Errorf("not a working Python: %s", msg)
	case len(lines) > 1 && strings.TrimSpace(lines[1]) != "":
		r.err = fmt.Errorf("Python %s cannot import %s", version, strings.TrimSpace(lines[1]))
	default:
		r.err = fmt.Errorf("Python %s is too old: the SDK needs 3.9 or later", version)
	}
	return r
}

var (
	sdkOnce sync.Once
	sdkDir  string
	sdkErr  error
)

// SDKPath returns a directory holding the `pluginpool` Python package this
// binary was built with, to put first on PYTHONPATH. The first call in a
// process writes it, once per SDK version, under the user's cache directory
// (~/.cache/pluginpool/python-HASH), or a private temporary directory if
// there is none.
func SDKPath() (string, error) {
	sdkOnce.Do(func() { sdkDir, sdkErr = extract() })
	return sdkDir, sdkErr
}

func extract() (string, error) {
	files, sum, err := sdkFiles()
	if err != nil {
		return "", err
	}
	base, err := os.UserCacheDir()
	if err == nil {
		base = filepath.Join(base, "pluginpool")
		err = os.MkdirAll(base, 0o755)
	}
	if err != nil {
		// No cache directory: a private one for this process.
		if base, err = os.MkdirTemp("", "pluginpool-python-"); err != nil {
			return "", fmt.Errorf("python SDK: %w", err)
		}
	}
	dir := filepath.Join(base, "python-"+sum[:16])
	if isFile(filepath.Join(dir, "pluginpool", ".complete")) {
		return dir, nil
	}
	tmp, err := os.MkdirTemp(base, ".python-")
	if err != nil {
		return "", fmt.Errorf("python SDK: %w", err)
	}
	defer os.RemoveAll(tmp) // after a successful rename, nothing is left there
	if err := os.MkdirAll(filepath.Join(tmp, "pluginpool"), 0o755); err != nil {
		return "", fmt.Errorf("python SDK: %w", err)
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(tmp, name), data, 0o644); err != nil {
			return "", fmt.Errorf("python SDK: %w", err)
		}
	}
	if err := os.WriteFile(filepath.Join(tmp, "pluginpool", ".complete"), nil, 0o644); err != nil {
		return "", fmt.Errorf("python SDK: %w", err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", fmt.Errorf("python SDK: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil && !isFile(filepath.Join(dir, "pluginpool", ".complete")) {
		// Another process may have won the race; its copy is as good.
		return "", fmt.Errorf("python SDK: %w", err)
	}
	return dir, nil
}

// sdkFiles returns the embedded SDK's files by path and a digest of them.
func sdkFiles() (map[string][]byte, string, error) {
	files := map[string][]byte{}
	h := sha256.New()
	err := fs.WalkDir(pysdk.FS, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := pysdk.FS.ReadFile(path)
		if err != nil {
			return err
		}
		files[path] = data
		fmt.Fprintf(h, "%s\x00%d\x00", path, len(data))
		h.Write(data)
		return nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("python SDK: %w", err)
	}
	return files, hex.EncodeToString(h.Sum(nil)), nil
}

// Env returns env with the SDK directory first on PYTHONPATH (after
// whatever PYTHONPATH env already sets, the last setting winning as in
// exec).
func Env(env []string, sdk string) []string {
	old := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PYTHONPATH="); ok {
			old = v
		}
	}
	p := sdk
	if old != "" {
		p += string(os.PathListSeparator) + old
	}
	return append(env, "PYTHONPATH="+p)
}

// UsesPython reports whether the executable at path is a script whose
// shebang line names a Python interpreter: such plugins get the SDK on
// PYTHONPATH too, though they run as they are.
func UsesPython(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	buf := make([]byte, 128)
	n, _ := f.Read(buf)
	line, _, _ := bytes.Cut(buf[:n], []byte("\n"))
	return bytes.HasPrefix(line, []byte("#!")) && bytes.Contains(line, []byte("python"))
}
