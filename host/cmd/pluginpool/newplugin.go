package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"text/template"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/pluginpool/pluginpool/internal/python"
	"github.com/pluginpool/pluginpool/sdk"
)

func init() {
	extraCommands = append(extraCommands, newNewPluginCmd)
}

// modulePath is the pluginpool module: what a plugin requires, and how a
// checkout is recognized (the module line of its go.mod).
const modulePath = "github.com/pluginpool/pluginpool"

// newPluginOptions are the flags of new-plugin.
type newPluginOptions struct {
	*globalOptions
	lang    string
	module  string
	replace string
}

func newNewPluginCmd(g *globalOptions) *cobra.Command {
	o := &newPluginOptions{globalOptions: g}
	cmd := &cobra.Command{
		Use:   "new-plugin NAME [DIR]",
		Short: "Write a ready-to-run plugin, in Go or Python, to start from",
		Long: `Write a new plugin into DIR (default ./NAME), with a task that upper-cases
strings: replace it with your own, with any JSON-decodable input and output.

In Go (the default), a module:

  main.go       the plugin: sdk.Serve with a typed task, func(ctx, string)
                (string, error)
  main_test.go  a test of the task function, without the host
  go.mod        module NAME (see --module), requiring the pluginpool SDK
  go.sum        copied from the checkout, when go.mod points at one

When run inside a pluginpool checkout (or with --replace), go.mod gets a
replace directive pointing at that checkout, so the plugin builds offline
against the SDK there.

In Python (--lang python), a script the host runs as it is, no build:

  NAME.py       the plugin: pluginpool.serve with a task, def task(text:
                str) -> str ('-' in NAME becomes '_' in file names)
  test_NAME.py  a unittest of the task function, without the host

The host runs a .py plugin with the first Python that can import grpc and
google.protobuf, and gives it the pluginpool package it ships; the next
steps say which interpreter that is here and how to run the test.

Nothing is overwritten: if any of the files exists, nothing is written.
The next steps are printed to stderr.

NAME names the plugin (as pool.toml will) and its executable: lower-case
letters, digits, '-' and '_', starting with a letter.`,
		Example: `  pluginpool new-plugin upper
  pluginpool new-plugin --lang python upper
  pluginpool new-plugin resize ~/src/resize --module github.com/me/resize
  pluginpool new-plugin foo /tmp/foo --replace ~/src/pluginpool`,
		Args: cobra.RangeArgs(1, 2),
		ValidArgsFunction: func(_ *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
			if len(args) == 1 {
				return nil, cobra.ShellCompDirectiveFilterDirs
			}
			return nil, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := "./" + args[0]
			if len(args) == 2 {
				dir = args[1]
			}
			return o.run(cmd.Context(), cmd.Flags(), args[0], dir)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.lang, "lang", "go", "the plugin's `language`: go or python")
	_ = cmd.RegisterFlagCompletionFunc("lang", cobra.FixedCompletions([]string{"go", "python"}, cobra.ShellCompDirectiveNoFileComp))
	f.StringVar(&o.module, "module", "", "the module `path` for go.mod (default: NAME)")
	f.StringVar(&o.replace, "replace", "", "build against the pluginpool checkout at `DIR` (default: the checkout the\ncurrent directory is in, if any)")
	_ = cmd.MarkFlagDirname("replace")
	return cmd
}

var pluginName = regexp.MustCompile(`^[a-z][a-z0-9_-]*$`)

// templateData fills the templates.
type templateData struct {
	Name    string // the plugin's name
	Module  string // its module path
	Go      string // the go directive's version
	Require string // the pluginpool version required
	Replace string // the checkout to build against, or ""
}

func (o *newPluginOptions) run(ctx context.Context, flags *pflag.FlagSet, name, dir string) error {
	if !pluginName.MatchString(name) {
		return usageError{fmt.Errorf("plugin name %q: use lower-case letters, digits, '-' and '_', starting with a letter (it names the plugin in pool.toml and its executable)", name)}
	}
	switch o.lang {
	case "go":
		return o.runGo(name, dir)
	case "python":
		for _, f := range []string{"module", "replace"} {
			if flags.Changed(f) {
				return usageError{fmt.Errorf("--%s is for Go plugins; a Python plugin has no module", f)}
			}
		}
		return o.runPython(ctx, name, dir)
	}
	return usageError{fmt.Errorf("--lang %q: want go or python", o.lang)}
}

func (o *newPluginOptions) runGo(name, dir string) error {
	d := templateData{Name: name, Module: o.module, Require: "v" + sdk.Version, Go: goVersion()}
	if d.Module == "" {
		d.Module = name
	}
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return exitf(ExitFailed, "new-plugin: %v", err)
	}
	checkout := o.replace
	if checkout != "" {
		if checkout, err = filepath.Abs(checkout); err != nil {
			return exitf(ExitFailed, "new-plugin: %v", err)
		}
		if !isCheckout(checkout) {
			return usageError{fmt.Errorf("--replace %s: no go.mod with module %s there", o.replace, modulePath)}
		}
	} else {
		checkout = findCheckout()
	}
	var goSum []byte
	if checkout != "" {
		d.Replace = checkout
		if rel, err := filepath.Rel(absDir, checkout); err == nil && strings.HasPrefix(absDir, checkout+string(filepath.Separator)) {
			d.Replace = filepath.ToSlash(rel) // inside the checkout: keep working if it moves
		}
		if v := goDirective(filepath.Join(checkout, "go.mod")); v != "" {
			d.Go = v
		}
		goSum, _ = os.ReadFile(filepath.Join(checkout, "go.sum"))
		if strings.ContainsAny(d.Replace, " \t\"'`\\") {
			d.Replace = strconv.Quote(d.Replace) // go.mod reads Go string syntax
		}
	}

	files := []newFile{
		{"go.mod", render(goModTemplate, d)},
		{"main.go", render(mainTemplate, d)},
		{"main_test.go", render(mainTestTemplate, d)},
	}
	if goSum != nil {
		files = append(files, newFile{"go.sum", goSum})
	}
	if err := o.writeFiles(dir, absDir, files); err != nil {
		return err
	}

	w := o.io.Err
	fmt.Fprintf(w, "Created plugin %s (module %s) in %s:\n", name, d.Module, dir)
	fmt.Fprintf(w, "  main.go       the plugin: a typed task that upper-cases strings\n")
	fmt.Fprintf(w, "  main_test.go  a test of the task\n")
	if d.Replace != "" {
		fmt.Fprintf(w, "  go.mod        requires %s, replaced by the checkout at %s\n", modulePath, checkout)
	} else {
		fmt.Fprintf(w, "  go.mod        requires %s %s (no local checkout found: see --replace)\n", modulePath, d.Require)
	}
	fmt.Fprintf(w, "Next:\n")
	fmt.Fprintf(w, "  cd %s\n", dir)
	fmt.Fprintf(w, "  go mod tidy && go test && go build -o %s .\n", name)
	fmt.Fprintf(w, "  pluginpool check ./%s && pluginpool map ./%s hello world\n", name, name)
	fmt.Fprintf(w, "Then, to call it by name, add to pool.toml:\n")
	fmt.Fprintf(w, "  [plugins.%s]\n  path = %q\n", name, filepath.Join(absDir, name))
	return nil
}

// newFile is a file new-plugin writes.
type newFile struct {
	name string
	data []byte
}

// writeFiles writes files into absDir (which the user named dir), all or
// none: if any exists already, nothing is written.
func (o *newPluginOptions) writeFiles(dir, absDir string, files []newFile) error {
	var exist []string
	for _, f := range files {
		if _, err := os.Lstat(filepath.Join(absDir, f.name)); err == nil {
			exist = append(exist, filepath.Join(dir, f.name))
		}
	}
	if len(exist) > 0 {
		return exitf(ExitUsage, "new-plugin: not overwriting %s; choose another DIR, or remove them", strings.Join(exist, ", "))
	}
	if err := os.MkdirAll(absDir, 0o755); err != nil {
		return exitf(ExitFailed, "new-plugin: %v", err)
	}
	for i, f := range files {
		if err := writeNew(filepath.Join(absDir, f.name), f.data); err != nil {
			for _, done := range files[:i] {
				os.Remove(filepath.Join(absDir, done.name))
			}
			return exitf(ExitFailed, "new-plugin: %v", err)
		}
	}
	return nil
}

// runPython writes a Python plugin: NAME.py and test_NAME.py.
func (o *newPluginOptions) runPython(ctx context.Context, name, dir string) error {
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return exitf(ExitFailed, "new-plugin: %v", err)
	}
	d := pyTemplateData{Name: name, Module: strings.ReplaceAll(name, "-", "_")}
	script, test := d.Module+".py", "test_"+d.Module+".py"
	files := []newFile{
		{script, render(pyMainTemplate, d)},
		{test, render(pyTestTemplate, d)},
	}
	if err := o.writeFiles(dir, absDir, files); err != nil {
		return err
	}

	// How to run the test: the SDK from this checkout if there is one, else
	// the copy this binary ships; the interpreter the host would pick.
	sdkPath := ""
	if checkout := findCheckout(); checkout != "" {
		sdkPath = filepath.Join(checkout, "sdk", "python")
	} else if p, err := python.SDKPath(); err == nil {
		sdkPath = p
	}
	interp, findErr := python.Find(ctx, absDir)
	pyCmd := "python3"
	if findErr == nil {
		pyCmd = interp.Path
	}
	w := o.io.Err
	fmt.Fprintf(w, "Created plugin %s (Python) in %s:\n", name, dir)
	fmt.Fprintf(w, "  %-*s  the plugin: a task that upper-cases strings\n", len(test), script)
	fmt.Fprintf(w, "  %-*s  a test of the task\n", len(test), test)
	fmt.Fprintf(w, "Next:\n")
	fmt.Fprintf(w, "  cd %s\n", dir)
	if sdkPath != "" {
		fmt.Fprintf(w, "  PYTHONPATH=%s %s -m unittest\n", shellQuote(sdkPath), pyCmd)
	} else {
		fmt.Fprintf(w, "  %s -m unittest          # with the pluginpool package importable (pip install pluginpool)\n", pyCmd)
	}
	fmt.Fprintf(w, "  pluginpool check ./%s && pluginpool map ./%s hello world\n", script, script)
	if findErr == nil {
		fmt.Fprintf(w, "The host runs it with %s (Python %s), the first Python here that can import grpc.\n", interp.Path, interp.Version)
	} else {
		fmt.Fprintf(w, "Note: the host cannot run it on this machine yet: %v\n", findErr)
	}
	fmt.Fprintf(w, "Then, to call it by name, add to pool.toml:\n")
	fmt.Fprintf(w, "  [plugins.%s]\n  path = %q\n", name, filepath.Join(absDir, script))
	return nil
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\n\"'`$\\|&;<>()*?[]#~!{}") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// writeNew creates path with data; it fails if path exists.
func writeNew(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("not overwriting %s", path)
		}
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// findCheckout returns the pluginpool checkout the current directory is
// in, else the one this executable was built into (bin/pluginpool), else "".
func findCheckout() string {
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if exe, err := os.Executable(); err == nil {
		if exe, err = filepath.EvalSymlinks(exe); err == nil {
			starts = append(starts, filepath.Dir(exe))
		}
	}
	for _, dir := range starts {
		for {
			if isCheckout(dir) {
				return dir
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	return ""
}

// isCheckout reports whether dir holds the pluginpool module's go.mod.
func isCheckout(dir string) bool {
	data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "module" && strings.Trim(f[1], `"`) == modulePath {
			return true
		}
	}
	return false
}

// goDirective returns the go version a go.mod declares, or "".
func goDirective(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "go" {
			return f[1]
		}
	}
	return ""
}

// goVersion is the go directive without a checkout: the Go release this
// binary was built with (the SDK needs at least the one pluginpool needs).
func goVersion() string {
	v := strings.TrimPrefix(runtime.Version(), "go")
	if v == "" || strings.ContainsAny(v, " +-") || !strings.Contains(v, ".") {
		return "1.26"
	}
	return v
}

func render(t *template.Template, d any) []byte {
	var b bytes.Buffer
	if err := t.Execute(&b, d); err != nil {
		panic(err) // the templates are constants: a bug
	}
	return b.Bytes()
}

var goModTemplate = template.Must(template.New("go.mod").Parse(`module {{.Module}}

go {{.Go}}

require github.com/pluginpool/pluginpool {{.Require}}
{{- if .Replace}}

// Build against a local pluginpool checkout.
replace github.com/pluginpool/pluginpool => {{.Replace}}
{{- end}}
`))

var mainTemplate = template.Must(template.New("main.go").Parse(`// Command {{.Name}} is a pluginpool plugin: it upper-cases strings.
//
//	go build -o {{.Name}} . && pluginpool map ./{{.Name}} hello world
//
// prints "HELLO" and "WORLD", one JSON value per line. Make it yours by
// changing task: its input and output may be any types encoding/json
// handles, such as a struct for items that are JSON objects.
package main

import (
	"context"
	"errors"
	"strings"

	"github.com/pluginpool/pluginpool/sdk"
)

func main() {
	sdk.Serve(sdk.Plugin{
		Name:    "{{.Name}}",
		Version: "0.1.0",
		// Running a task twice is harmless, so the host may run the tasks
		// of a worker that crashed again. Say false if a task has effects
		// that must not happen twice.
		Idempotent: true,
		Task:       sdk.Func(task),
		// Init, if set, runs once per process with the plugin's
		// [plugins.{{.Name}}.config] table from pool.toml, as JSON:
		// Init: func(ctx context.Context, config []byte) error { ... },
	})
}

// task runs one item. The host runs one process per core and sends each a
// batch of items at a time; tasks of one process run one after another.
// An error or a panic fails this item only, and the process lives on.
func task(ctx context.Context, in string) (string, error) {
	if in == "" {
		return "", errors.New("empty string: nothing to upper-case")
	}
	// To the host's log, tagged with plugin, worker and pid (see --log-level):
	sdk.Logger(ctx).Debug("upper-casing", "length", len(in))
	// sdk.Printf(ctx, "...") prints a line that travels with the result.
	return strings.ToUpper(in), nil
}
`))

var mainTestTemplate = template.Must(template.New("main_test.go").Parse(`package main

import (
	"context"
	"testing"
)

func TestTask(t *testing.T) {
	ctx := context.Background()
	got, err := task(ctx, "hello")
	if err != nil || got != "HELLO" {
		t.Errorf("task(%q) = %q, %v; want %q, nil", "hello", got, err, "HELLO")
	}
	if _, err := task(ctx, ""); err == nil {
		t.Errorf("task(%q) succeeded; want an error", "")
	}
}
`))

// pyTemplateData fills the Python templates.
type pyTemplateData struct {
	Name   string // the plugin's name
	Module string // its file's module name: Name with '-' as '_'
}

var pyMainTemplate = template.Must(template.New("plugin.py").Parse(`"""{{.Name}}: a pluginpool plugin that upper-cases strings.

    pluginpool map ./{{.Module}}.py hello world

prints "HELLO" and "WORLD", one JSON value per line. Make it yours by
changing task: the annotation of its parameter says which items it takes
(int, float, str, bool, dict, list, a dataclass; none for any JSON value),
and it may return anything json.dumps encodes, or None for no value.
"""

import logging

import pluginpool

log = logging.getLogger("{{.Name}}")


def task(text: str) -> str:
    """Runs one item. The host runs one process per core and sends each a
    batch of items at a time; tasks of one process run one after another.
    An exception fails this item only (with its traceback), and the process
    lives on."""
    if not text:
        raise ValueError("empty string: nothing to upper-case")
    # To the host's log, tagged with plugin, worker and pid (see --log-level):
    log.debug("upper-casing %d characters", len(text))
    # print("...") here prints a line that travels with the item's result.
    return text.upper()


if __name__ == "__main__":
    pluginpool.serve(
        task,
        name="{{.Name}}",
        version="0.1.0",
        # Running a task twice is harmless, so the host may run the tasks of
        # a worker that crashed again. Say False if a task has effects that
        # must not happen twice.
        idempotent=True,
        # init=setup runs setup(config) once per process, with the plugin's
        # [plugins.{{.Name}}.config] table from pool.toml as a dict.
    )
`))

var pyTestTemplate = template.Must(template.New("test_plugin.py").Parse(`import unittest

from {{.Module}} import task


class TaskTest(unittest.TestCase):
    def test_upper(self):
        self.assertEqual(task("hello"), "HELLO")

    def test_empty(self):
        with self.assertRaises(ValueError):
            task("")


if __name__ == "__main__":
    unittest.main()
`))
