package pool

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"

	"github.com/hashicorp/go-hclog"

	"github.com/pluginpool/pluginpool/internal/python"
)

// command is how the pool starts a plugin process: the executable, its
// arguments and its environment. It is worked out once per pool.
//
// A plugin is usually an executable run as it is (a compiled Go plugin, or
// a script with a shebang line). A file whose name ends in .py is run by
// the first Python that can import the SDK's dependencies (see
// internal/python.Find): its shebang, if any, is ignored, as a pyenv or
// conda `python3` first on PATH often lacks grpc while another has it.
// Python plugins, .py or shebang, get the SDK this host ships first on
// PYTHONPATH, so they need no `pip install` and always speak this host's
// protocol.
type command struct {
	once   sync.Once
	python string // the interpreter of a .py plugin, else ""
	sdk    string // the Python SDK for PYTHONPATH, else ""
	err    error
}

// resolve returns the command that starts exe, the plugin (cfg.Path, or
// the sandbox's verified copy of it), with cfg.Args, in env. The
// interpreter is found and the SDK written once; the first call's ctx
// bounds that.
func (c *command) resolve(ctx context.Context, exe string, cfg *Config, env []string, log hclog.Logger) (path string, args, cmdEnv []string, err error) {
	c.once.Do(func() {
		script := python.IsScript(cfg.Path)
		if !script && !python.UsesPython(cfg.Path) {
			return
		}
		if script {
			// The script's own directory, not the copy's: that is where
			// its .venv is.
			interp, err := python.Find(ctx, filepath.Dir(cfg.Path))
			if err != nil {
				c.err = fmt.Errorf("%w: %w", ErrInterpreter, err)
				return
			}
			c.python = interp.Executable
			log.Debug("python plugin", "interpreter", interp.Path, "executable", interp.Executable, "version", interp.Version)
		}
		if c.sdk, c.err = python.SDKPath(); c.err != nil {
			c.err = fmt.Errorf("%w: %w", ErrInterpreter, c.err)
		}
	})
	if c.err != nil {
		return "", nil, nil, c.err
	}
	path, args, cmdEnv = exe, cfg.Args, env
	if c.python != "" {
		path, args = c.python, append([]string{exe}, cfg.Args...)
	}
	if c.sdk != "" {
		cmdEnv = python.Env(env, c.sdk)
	}
	return path, args, cmdEnv, nil
}
