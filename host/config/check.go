package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"

	"github.com/pluginpool/pluginpool/host/pool"
	"github.com/pluginpool/pluginpool/internal/python"
)

// Check runs the file-system checks that Load leaves out, for `pluginpool
// validate`: each plugin executable exists, is a regular file, is
// executable (a .py script need not be: an interpreter runs it) and, when
// sha256 is set, has that digest; each pipeline's
// input file exists; each output file's directory exists. It returns every
// problem, sorted by line, each a *Error matching ErrInvalid and also
// fs.ErrNotExist, fs.ErrPermission or pool.ErrChecksum where one applies;
// nil means all is well. It reads every plugin with a sha256 in full.
func (f *File) Check() []error {
	var errs []error
	bad := func(path []string, cause error, format string, args ...any) {
		errs = append(errs, &Error{File: f.name, Line: f.lines.get(path), Key: keyString(path), Msg: fmt.Sprintf(format, args...), Err: cause})
	}
	for _, name := range sortedKeys(f.Plugins) {
		pl := f.Plugins[name]
		at := []string{"plugins", name, "path"}
		fi, err := os.Stat(pl.Path)
		switch {
		case errors.Is(err, fs.ErrNotExist) && python.IsScript(pl.Path):
			bad(at, err, "plugin script %s does not exist: fix path", pl.Path)
			continue
		case errors.Is(err, fs.ErrNotExist):
			bad(at, err, "plugin executable %s does not exist: build it, or fix path", pl.Path)
			continue
		case err != nil:
			bad(at, err, "cannot use plugin executable: %v", err)
			continue
		case fi.IsDir():
			bad(at, nil, "%s is a directory, not a plugin executable", pl.Path)
			continue
		case runtime.GOOS != "windows" && fi.Mode().Perm()&0o111 == 0 && !python.IsScript(pl.Path):
			bad(at, fs.ErrPermission, "%s is not executable: chmod +x it", pl.Path)
			continue
		}
		if pl.SHA256 != "" {
			sum, err := pool.FileSHA256(pl.Path)
			switch {
			case err != nil:
				bad([]string{"plugins", name, "sha256"}, err, "cannot compute the checksum: %v", err)
			case sum != pl.SHA256:
				bad([]string{"plugins", name, "sha256"}, pool.ErrChecksum,
					"%s has sha256 %s, not the configured one: rebuild or re-verify the plugin, then update sha256", pl.Path, sum)
			}
		}
	}
	if c := f.Cluster; c != nil {
		for _, file := range []struct{ key, path string }{
			{"credentials", c.Credentials}, {"nkey", c.NKey}, {"tls_ca", c.TLSCA}, {"tls_cert", c.TLSCert}, {"tls_key", c.TLSKey},
		} {
			if file.path == "" {
				continue
			}
			if _, err := os.Stat(file.path); err != nil {
				bad([]string{"cluster", file.key}, err, "cannot use %s: %v", file.path, err)
			}
		}
	}
	for _, name := range sortedKeys(f.Pipelines) {
		pp := f.Pipelines[name]
		if pp.Input != "-" {
			at := []string{"pipelines", name, "input"}
			fi, err := os.Stat(pp.Input)
			switch {
			case errors.Is(err, fs.ErrNotExist):
				bad(at, err, "input file %s does not exist", pp.Input)
			case err != nil:
				bad(at, err, "cannot use input file: %v", err)
			case fi.IsDir():
				bad(at, nil, "input %s is a directory, not a file", pp.Input)
			}
		}
		if pp.Output != "-" {
			at := []string{"pipelines", name, "output"}
			dir := filepath.Dir(pp.Output)
			fi, err := os.Stat(dir)
			switch {
			case errors.Is(err, fs.ErrNotExist):
				bad(at, err, "output directory %s does not exist", dir)
			case err != nil:
				bad(at, err, "cannot use output directory: %v", err)
			case !fi.IsDir():
				bad(at, nil, "%s is not a directory", dir)
			}
		}
	}
	if len(errs) == 0 {
		return nil
	}
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].(*Error).Line < errs[j].(*Error).Line })
	return errs
}
