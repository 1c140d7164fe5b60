package pipeline

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// outputFile writes a pipeline's results to a temporary file next to its
// target and renames it over the target only when the run completed, so a
// failed or interrupted run never leaves a half file that looks whole: the
// target keeps its old content, or stays absent.
//
// A target that exists and is not a regular file (/dev/null, a FIFO, a
// terminal) is written directly: renaming over it would replace the device
// rather than write to it.
type outputFile struct {
	f      *os.File
	path   string // the target
	direct bool   // f is the target itself
	done   bool   // committed or discarded
}

// createOutput opens the temporary file for target path.
func createOutput(path string) (*outputFile, error) {
	mode := fs.FileMode(0o644)
	switch fi, err := os.Stat(path); {
	case err == nil && !fi.Mode().IsRegular():
		if fi.IsDir() {
			return nil, fmt.Errorf("output %s is a directory", path)
		}
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			return nil, fmt.Errorf("opening output: %w", err)
		}
		return &outputFile{f: f, path: path, direct: true}, nil
	case err == nil:
		mode = fi.Mode().Perm() // replacing a file keeps its permissions
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("output: %w", err)
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("creating output: %w", err)
	}
	// CreateTemp makes the file 0600; the result should look like any
	// other file the user creates.
	if err := f.Chmod(mode); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, fmt.Errorf("creating output: %w", err)
	}
	return &outputFile{f: f, path: path}, nil
}

func (o *outputFile) Write(p []byte) (int, error) { return o.f.Write(p) }

// commit makes the written content the target's: fsync, close, rename,
// then fsync the directory so the rename survives a crash. On error the
// temporary file is removed and the target is left as it was.
func (o *outputFile) commit() error {
	if o.done {
		return nil
	}
	o.done = true
	if o.direct {
		return o.f.Close()
	}
	tmp := o.f.Name()
	err := o.f.Sync()
	if cerr := o.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, o.path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing output %s: %w", o.path, err)
	}
	if d, err := os.Open(filepath.Dir(o.path)); err == nil {
		d.Sync() // best effort: not every file system syncs directories
		d.Close()
	}
	return nil
}

// discard removes the temporary file. Safe to call after commit, which
// makes it a no-op.
func (o *outputFile) discard() {
	if o.done {
		return
	}
	o.done = true
	o.f.Close()
	if !o.direct {
		os.Remove(o.f.Name())
	}
}
