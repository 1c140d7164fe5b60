package pool

import (
	"context"
	"fmt"
	"os"
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
	once sync.Once
	path string
	args []string
	env  []string
	err  error
}

func (c *command) resolve(ctx context.Context, cfg *Config, log hclog.Logger) (path string, args, env []string, err error) {
	c.once.Do(func() {
		c.path, c.args = cfg.Path, cfg.Args
		c.env = append(os.Environ(), cfg.Env...)
		script := python.IsScript(cfg.Path)
		if !script && !python.UsesPython(cfg.Path) {
			return
		}
		if script {
			interp, err := python.Find(ctx, filepath.Dir(cfg.Path))
			if err != nil {
				c.err = fmt.Errorf("%w: %w", ErrInterpreter, err)
				return
			}
			c.path = interp.Executable
			c.args = append([]string{cfg.Path}, cfg.Args...)
			log.Debug("python plugin", "interpreter", interp.Path, "executable", interp.Executable, "version", interp.Version)
		}
		sdk, err := python.SDKPath()
		if err != nil {
			c.err = fmt.Errorf("%w: %w", ErrInterpreter, err)
			return
		}
		c.env = python.Env(c.env, sdk)
	})
	return c.path, c.args, c.env, c.err
}
