package pool

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"

	"github.com/pluginpool/pluginpool/internal/python"
)

// A sandbox is what a pool owns on the machine besides its processes: a
// private directory for the plugins' sockets and the verified executable,
// a cgroup where the machine delegates one, and a watcher that cleans up
// after a host that was killed without warning. One per pool; close
// removes all of it.
type sandbox struct {
	// dir is private to the host's user (0700): go-plugin puts each
	// plugin's socket in a directory of its own inside it
	// (UnixSocketConfig.TempDir), so another user cannot reach a socket
	// whatever the umask made of the socket file itself.
	dir string
	// exe is what workers exec: the verified copy inside dir when the
	// pool has a SHA256, else Config.Path.
	exe string
	// cgroup is the pool's cgroup v2 directory, or nil where the machine
	// delegates none; each worker gets one inside it.
	cgroup *cgroup
	// memory says how Config.MaxMemory is enforced.
	memory memoryLimit
	// watcher ends the workers' process groups and cgroups and removes
	// dir if the host dies first; nil where it could not start.
	watcher *watcher
	// workers numbers worker cgroups.
	workers atomic.Uint64

	closeOnce sync.Once
}

// memoryLimit says how a pool enforces MaxMemory.
type memoryLimit int

const (
	memoryNone   memoryLimit = iota // no MaxMemory
	memoryCgroup                    // cgroup v2 memory.max on each worker's cgroup
	memoryRlimit                    // RLIMIT_DATA on each worker process
)

func (m memoryLimit) String() string {
	switch m {
	case memoryCgroup:
		return "cgroup memory.max"
	case memoryRlimit:
		return "RLIMIT_DATA"
	}
	return "none"
}

// newSandbox makes cfg's sandbox: the private directory, the verified
// copy of the executable when cfg has a SHA256, the cgroup and the
// watcher. What the machine lacks (cgroup delegation, /bin/sh) is logged
// and done without; only a failed check of the executable is an error.
func newSandbox(cfg *Config, log hclog.Logger) (*sandbox, error) {
	dir, err := os.MkdirTemp(socketBase(), "pluginpool-")
	if err != nil {
		return nil, fmt.Errorf("creating the pool's private directory: %w", err)
	}
	sb := &sandbox{dir: dir, exe: cfg.Path}
	if cfg.SHA256 != "" {
		if sb.exe, err = verifiedCopy(cfg.Path, cfg.SHA256, filepath.Join(dir, "exe")); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	if withoutCgroups.Load() {
		err = errNoCgroup
	} else {
		// The host's pid in the name says whose it is.
		name := strings.Replace(filepath.Base(dir), "-", "-"+strconv.Itoa(os.Getpid())+"-", 1)
		sb.cgroup, err = newPoolCgroup(name, cfg.MaxMemory > 0)
	}
	if err != nil {
		log.Debug("no cgroup per worker: process groups only", "reason", err)
	}
	switch {
	case cfg.MaxMemory == 0:
	case sb.cgroup != nil && sb.cgroup.memory:
		sb.memory = memoryCgroup
	default:
		sb.memory = memoryRlimit
		why := "no cgroup v2 delegated to this process"
		if sb.cgroup != nil {
			why = "the memory controller is not enabled for this process's cgroup subtree"
		}
		log.Debug("max_memory enforced with RLIMIT_DATA", "reason", why)
	}
	if groupsSupported {
		cgroupDir := ""
		if sb.cgroup != nil {
			cgroupDir = sb.cgroup.dir
		}
		if sb.watcher, err = startWatcher(dir, cgroupDir, log); err != nil {
			log.Warn("plugin child processes may outlive a host that is SIGKILLed", "reason", err)
		}
	}
	log.Debug("sandbox", "dir", dir, "exe", sb.exe, "cgroup", sb.cgroup != nil, "max_memory", sb.memory)
	return sb, nil
}

// close removes the sandbox once every worker has ended. Safe to call more
// than once.
func (sb *sandbox) close(log hclog.Logger) {
	sb.closeOnce.Do(func() {
		if sb.watcher != nil {
			// Every worker was reaped: nothing is left to watch.
			sb.watcher.stop()
			defer sb.watcher.wait()
		}
		if sb.cgroup != nil {
			if err := sb.cgroup.remove(); err != nil {
				log.Warn("cannot remove the pool's cgroup", "error", err)
			}
		}
		if err := os.RemoveAll(sb.dir); err != nil {
			log.Warn("cannot remove the pool's private directory", "error", err)
		}
	})
}

// socketBase is where the pool's private directory goes: the temporary
// directory, unless its path is too long for the sockets inside. A unix
// socket's path must fit in 104 bytes (108 on Linux), and go-plugin's
// and ours add up to 60 ("/pluginpool-N/plugin-dirN/pluginN", each N up
// to 10 digits); macOS's per-user TMPDIR is ~50 bytes long.
func socketBase() string {
	base := os.TempDir()
	if len(base)+60 >= 104 {
		if st, err := os.Stat("/tmp"); err == nil && st.IsDir() {
			return "/tmp"
		}
	}
	return base
}

// verifiedCopy copies the executable at path into a new directory dir,
// hashing the bytes as it copies them, and returns the copy's path if
// their sha256 is want. Workers exec the copy, never path: a file swapped
// or rewritten at path after the check cannot run. The directory is inside
// the pool's private one, so only the host's user (who could as well
// ptrace the host) can change the copy.
//
// The copy keeps the file's name, and dir gets a symbolic link to each of
// the file's neighbours, so a program that finds files next to itself
// still does: a Python script's sys.path[0] is the directory of the path
// it was run by, and a Go binary's os.Executable is the copy. Those
// neighbours (a script's imported modules, its interpreter) are not
// verified: only the file itself is.
func verifiedCopy(path, want, dir string) (string, error) {
	if err := checkExecutable(path); err != nil {
		return "", err
	}
	// Neighbours of the real file, where a symlinked plugin's modules are.
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrNotFound, err)
	}
	src, err := os.Open(real)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrNotFound, err)
	}
	defer src.Close()
	if err := os.Mkdir(dir, 0o700); err != nil {
		return "", err
	}
	name := filepath.Base(real)
	copyPath := filepath.Join(dir, name)
	dst, err := os.OpenFile(copyPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o500)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(dst, h), src)
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("%w: copying %s: %v", ErrChecksum, path, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return "", fmt.Errorf("%w: %s has sha256 %s, pool.toml wants %s (rebuilt the plugin? update sha256)", ErrChecksum, path, got, want)
	}
	ents, err := os.ReadDir(filepath.Dir(real))
	if err != nil {
		return "", fmt.Errorf("%w: listing the plugin's directory: %v", ErrNotFound, err)
	}
	for _, e := range ents {
		if e.Name() == name {
			continue
		}
		if err := os.Symlink(filepath.Join(filepath.Dir(real), e.Name()), filepath.Join(dir, e.Name())); err != nil {
			return "", err
		}
	}
	return copyPath, nil
}

// checkExecutable verifies that path exists and is an executable file (a
// .py script need only be a file: an interpreter runs it).
func checkExecutable(path string) error {
	script := python.IsScript(path)
	st, err := os.Stat(path)
	switch {
	case err != nil && script:
		return fmt.Errorf("%w: %v (fix the plugin's path)", ErrNotFound, err)
	case err != nil:
		return fmt.Errorf("%w: %v (build the plugin, or fix its path)", ErrNotFound, err)
	case st.IsDir():
		return fmt.Errorf("%w: %s is a directory", ErrNotFound, path)
	case st.Mode()&0o111 == 0 && !script:
		return fmt.Errorf("%w: %s is not executable (chmod +x it)", ErrNotFound, path)
	}
	return nil
}

// errNoCgroup says why a pool has no cgroup.
var errNoCgroup = errors.New("no cgroup v2 hierarchy")

// withoutCgroups makes new pools do without cgroups, as on a machine that
// delegates none: tests set it to check what process groups alone do.
var withoutCgroups atomic.Bool
