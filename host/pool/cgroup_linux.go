package pool

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// A cgroup is a pool's cgroup v2 directory, inside the cgroup the host
// runs in. Each worker gets a cgroup of its own inside it: every process
// the worker starts is in it, including ones that left its process group,
// so killing the cgroup ends the worker's whole tree.
type cgroup struct {
	dir string
	// memory: the memory controller is enabled for the workers' cgroups,
	// so memory.max and memory.events work there. That needs it enabled
	// in the host's own cgroup's subtree_control, which the kernel allows
	// only in the root cgroup or in one without processes of its own
	// (cgroup v2's "no internal processes" rule): usually a cgroup
	// delegated for the purpose.
	memory bool
}

// newPoolCgroup creates the pool's cgroup, named name, in the host's own
// cgroup, with the memory controller enabled for its children when
// wantMemory and the kernel allows it. It fails where the host cannot
// create cgroups (no cgroup v2 hierarchy, not delegated, read-only).
func newPoolCgroup(name string, wantMemory bool) (*cgroup, error) {
	parent, err := ownCgroup()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(parent, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, err
	}
	cg := &cgroup{dir: dir}
	if wantMemory && hasWord(dir, "cgroup.controllers", "memory") {
		cg.memory = writeControl(filepath.Join(dir, "cgroup.subtree_control"), "+memory") == nil
	}
	return cg, nil
}

// ownCgroup returns the directory of the cgroup v2 this process is in.
func ownCgroup() (string, error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	rel, ok := "", false
	for line := range strings.SplitSeq(string(b), "\n") {
		if r, found := strings.CutPrefix(line, "0::"); found {
			rel, ok = r, true
		}
	}
	if !ok {
		return "", fmt.Errorf("%w: /proc/self/cgroup has no cgroup v2 entry", errNoCgroup)
	}
	mi, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	defer mi.Close()
	sc := bufio.NewScanner(mi)
	for sc.Scan() {
		// "36 35 0:30 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw"
		left, right, ok := strings.Cut(sc.Text(), " - ")
		f := strings.Fields(left)
		if !ok || len(f) < 5 || !strings.HasPrefix(right, "cgroup2 ") {
			continue
		}
		root, mount := unescapeMount(f[3]), unescapeMount(f[4])
		if r, ok := strings.CutPrefix(rel, root); ok {
			return filepath.Join(mount, r), nil
		}
	}
	return "", fmt.Errorf("%w mounted", errNoCgroup)
}

// unescapeMount undoes mountinfo's octal escapes (a space is "\040").
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// writeControl writes v to the cgroup control file path. Not os.WriteFile:
// O_CREATE on a file cgroupfs does not have fails with EACCES rather than
// ENOENT, and some (memory.swap.max, cgroup.kill) exist only on some
// kernels.
func writeControl(path, v string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(v)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// hasWord reports whether file in dir lists word.
func hasWord(dir, file, word string) bool {
	b, err := os.ReadFile(filepath.Join(dir, file))
	return err == nil && bytes.Contains(append(append([]byte(" "), bytes.TrimSpace(b)...), ' '), []byte(" "+word+" "))
}

// worker creates the cgroup of the pool's n-th worker, with memory.max
// set to maxMemory if that is > 0 (and the pool has the memory
// controller), and opens it for clone3.
func (cg *cgroup) worker(n uint64, maxMemory int64) (*workerCgroup, error) {
	dir := filepath.Join(cg.dir, "w"+strconv.FormatUint(n, 10))
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, err
	}
	w := &workerCgroup{dir: dir}
	if maxMemory > 0 && cg.memory {
		if err := writeControl(filepath.Join(dir, "memory.max"), strconv.FormatInt(maxMemory, 10)); err != nil {
			return nil, errors.Join(err, w.remove())
		}
		// Best effort (not every kernel has them): no swapping around the
		// limit, and an OOM kill takes the whole worker, the unit that
		// fails.
		_ = writeControl(filepath.Join(dir, "memory.swap.max"), "0")
		_ = writeControl(filepath.Join(dir, "memory.oom.group"), "1")
	}
	f, err := os.Open(dir)
	if err != nil {
		return nil, errors.Join(err, w.remove())
	}
	w.fd = f
	return w, nil
}

// remove removes the pool's cgroup and any worker cgroup left in it.
func (cg *cgroup) remove() error {
	ents, _ := os.ReadDir(cg.dir)
	var errs []error
	for _, e := range ents {
		if e.IsDir() {
			errs = append(errs, (&workerCgroup{dir: filepath.Join(cg.dir, e.Name())}).remove())
		}
	}
	return errors.Join(append(errs, removeCgroup(cg.dir))...)
}

// A workerCgroup is one worker process's cgroup.
type workerCgroup struct {
	dir string
	fd  *os.File // open for clone3 until the process has started
}

// fdNum is the descriptor to start the process in, or -1.
func (w *workerCgroup) fdNum() int {
	if w == nil || w.fd == nil {
		return -1
	}
	return int(w.fd.Fd())
}

// started closes the descriptor clone3 needed.
func (w *workerCgroup) started() {
	if w != nil && w.fd != nil {
		w.fd.Close()
		w.fd = nil
	}
}

// kill SIGKILLs every process in the cgroup.
func (w *workerCgroup) kill() {
	err := writeControl(filepath.Join(w.dir, "cgroup.kill"), "1")
	if !errors.Is(err, os.ErrNotExist) {
		return
	}
	// Before Linux 5.14: one by one.
	b, _ := os.ReadFile(filepath.Join(w.dir, "cgroup.procs"))
	for f := range strings.FieldsSeq(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// oomKilled reports whether the kernel's OOM killer killed a process of
// the cgroup for exceeding memory.max.
func (w *workerCgroup) oomKilled() bool {
	b, err := os.ReadFile(filepath.Join(w.dir, "memory.events"))
	if err != nil {
		return false
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "oom_kill "); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n > 0
		}
	}
	return false
}

// remove removes the worker's cgroup, once its killed processes are gone.
func (w *workerCgroup) remove() error {
	w.started()
	return removeCgroup(w.dir)
}

// removeCgroup removes cgroup dir, waiting up to a second for processes
// that were just killed to leave it (rmdir fails with EBUSY until then;
// exited processes not yet reaped do not count).
func removeCgroup(dir string) error {
	deadline := time.Now().Add(time.Second)
	for {
		err := os.Remove(dir)
		if err == nil || errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if !errors.Is(err, syscall.EBUSY) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(5 * time.Millisecond)
	}
}
