package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pluginpool/pluginpool/host/pipeline"
	"github.com/pluginpool/pluginpool/host/pool"
	"github.com/pluginpool/pluginpool/internal/python"
	"github.com/pluginpool/pluginpool/internal/quote"
)

func init() {
	extraCommands = append(extraCommands, newCheckCmd)
}

// checkOptions are the flags of check.
type checkOptions struct {
	*globalOptions
	input   string
	timeout time.Duration
}

// checkSamples are the sample items check tries, in order, when --input is
// not given: the next is tried only when the plugin could not decode the
// previous one, so a plugin of numbers, of strings or of objects passes.
var checkSamples = []string{`1`, `"hello"`, `{}`}

func newCheckCmd(g *globalOptions) *cobra.Command {
	o := &checkOptions{globalOptions: g}
	cmd := &cobra.Command{
		Use:   "check PLUGIN",
		Short: "Start a plugin, describe it and run one sample task",
		Long: `Check that PLUGIN works under the host: start one worker process, print
what it says about itself (name, version, whether its tasks are idempotent,
whether it keeps the start ledger, the SDK that built it), run one sample
task and print its result.

Without --input the sample is 1; if the plugin cannot decode that, "hello",
then {}. The report goes to stdout. When something is wrong, check says what
in plain words on stderr and exits non-zero:

  not found, not executable      exit 3: build it, or fix the path
  no Python can run a .py plugin exit 3: install grpcio and protobuf for one
  not a plugin (no handshake)    exit 3: it must serve through the SDK
                                 (sdk.Serve in Go, pluginpool.serve in
                                 Python) and print nothing to stdout first
  Init failed, start timed out   exit 3: the plugin's own error is shown
  the sample task failed         exit 1: its error, panic or crash is shown

PLUGIN is a name from the config file (its [plugins.NAME.config] table is
passed to Init, as map does), or a path to a plugin executable or .py file.`,
		Example: `  pluginpool check double
  pluginpool check ./foo/foo
  pluginpool check ./upper.py
  pluginpool check printer --input '"Child process"'`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completePlugin(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.run(cmd.Context(), args[0], cmd.Flags().Changed("input"))
		},
	}
	cmd.Flags().StringVar(&o.input, "input", "", "the sample item, as JSON (a word that is not JSON is taken as a string)\n(default: 1, then \"hello\", then {})")
	cmd.Flags().DurationVar(&o.timeout, "timeout", 10*time.Second, "how long the sample task may run")
	return cmd
}

func (o *checkOptions) run(ctx context.Context, name string, explicit bool) error {
	cfg, err := o.poolConfig(name)
	if err != nil {
		return err
	}
	if o.timeout <= 0 {
		return usageError{fmt.Errorf("--timeout must be > 0, got %s", o.timeout)}
	}
	if err := checkFile(cfg.Path); err != nil {
		return exitf(ExitStart, "check %s: %v", name, err)
	}
	// One worker; a crash is reported, not retried.
	cfg.Workers, cfg.MaxAttempts = 1, 1
	began := time.Now()
	p, err := o.startHere(ctx, name, cfg)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return exitf(ExitStart, "check %s: %s", name, explainStart(err))
	}
	defer p.Terminate()
	started := time.Since(began)

	// Printed as it goes, so a sample task that hangs shows what came before.
	field := func(k, format string, args ...any) {
		fmt.Fprintf(o.io.Out, "%-11s %s\n", k, fmt.Sprintf(format, args...))
	}
	info := p.Info()
	field("plugin", "%s", name)
	field("path", "%s", cfg.Path)
	if python.IsScript(cfg.Path) {
		// The pool found it already: this asks the same, cached, question.
		if py, err := python.Find(ctx, filepath.Dir(cfg.Path)); err == nil {
			field("python", "%s (Python %s)", py.Path, py.Version)
		}
	}
	field("started", "in %s (launch, handshake, Describe, Init)", roundDuration(started))
	field("name", "%s", info.Name)
	field("version", "%s", info.Version)
	if info.Idempotent {
		field("idempotent", "yes: a task its worker died with runs again, up to max_attempts runs")
	} else {
		field("idempotent", "no: a task that ran when its worker died fails; ones not started run again")
	}
	if info.StartLedger {
		field("ledger", "yes: a crash costs only the task that was running (worker.proto, start ledger)")
	} else {
		field("ledger", "no: every task a crashed worker held counts as run (worker.proto, start ledger)")
	}
	switch {
	case info.Lane:
		field("transport", "lane: batches on a socket pair of their own (docs/PROTOCOL.md, the lane)")
	case os.Getenv("PLUGINPOOL_LANE") == "off":
		field("transport", "gRPC (PLUGINPOOL_LANE=off)")
	case cfg.TLS:
		field("transport", "gRPC with TLS (tls = true keeps every batch on it)")
	default:
		field("transport", "gRPC: the plugin does not take the lane (docs/PROTOCOL.md), which answers single calls faster")
	}
	field("sdk", "%s", info.SDK)

	samples := checkSamples
	if explicit {
		samples = []string{o.input}
	}
	var (
		item []byte
		r    pool.Result
		took time.Duration
	)
	for i, s := range samples {
		item = pipeline.ArgItem(s)
		tctx, cancel := context.WithTimeout(ctx, o.timeout)
		began := time.Now()
		r, _ = p.Apply(tctx, item)
		took = time.Since(began)
		timedOut := tctx.Err() != nil && ctx.Err() == nil
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if timedOut {
			r.Err = fmt.Errorf("no result within --timeout %s", o.timeout)
		}
		var te *pool.TaskError
		if errors.As(r.Err, &te) && te.Kind == pool.KindDecode && i < len(samples)-1 {
			continue // a sample of the wrong type: try the next
		}
		break
	}
	if r.Err != nil {
		field("task", "%s → failed", quote.Item(item))
		return exitf(ExitFailed, "check %s: %s", name, explainTask(r.Err, item, explicit))
	}
	var got []string
	if r.Value != nil {
		got = append(got, quote.Item(r.Value))
	} else {
		got = append(got, "no value")
	}
	for _, l := range r.Output {
		got = append(got, fmt.Sprintf("printed %q", l))
	}
	field("task", "%s → %s in %s", quote.Item(item), strings.Join(got, "; "), roundDuration(took))
	if err := p.Close(); err != nil {
		return exitf(ExitStart, "check %s: %v", name, err)
	}
	fmt.Fprintf(o.io.Out, "ok: %s works\n", name)
	return nil
}

// checkFile says in plain words why path cannot be a plugin: an
// executable, or a .py script (which an interpreter runs, so it need not be
// executable).
func checkFile(path string) error {
	script := python.IsScript(path)
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist) && script:
		return fmt.Errorf("not found: %s does not exist", path)
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("not found: %s does not exist; build it first (make build, or go build -o %s in a Go plugin's module)", path, path)
	case err != nil:
		return fmt.Errorf("cannot read %s: %v", path, err)
	case st.IsDir():
		return fmt.Errorf("not a plugin: %s is a directory; name the plugin's executable or .py file (go build -o NAME in a Go plugin's directory makes one)", path)
	case st.Mode()&0o111 == 0 && !script:
		return fmt.Errorf("not executable: %s has no execute permission (chmod +x %s)", path, path)
	}
	return nil
}

// explainStart turns a failed pool start into plain words.
func explainStart(err error) string {
	var se *pool.StartError
	var tail []string
	detail := err.Error()
	path := ""
	if errors.As(err, &se) {
		tail = se.Stderr
		detail = se.Err.Error()
		path = se.Path
	}
	for _, sentinel := range []error{pool.ErrNotFound, pool.ErrChecksum, pool.ErrInterpreter, pool.ErrHandshake, pool.ErrInit, pool.ErrStartTimeout} {
		detail = strings.TrimPrefix(detail, sentinel.Error()+": ")
	}
	var msg string
	switch {
	case errors.Is(err, pool.ErrNotFound):
		msg = "not found or not executable: " + detail
	case errors.Is(err, pool.ErrChecksum):
		msg = "checksum mismatch: " + detail + "; the executable changed since sha256 was set in the config: rebuild the right one, or update sha256"
	case errors.Is(err, pool.ErrInterpreter):
		msg = "cannot run a Python plugin here: " + detail
	case errors.Is(err, pool.ErrHandshake) && (python.IsScript(path) || python.UsesPython(path)):
		msg = "not a pluginpool plugin: " + detail + "\n  A Python plugin must call pluginpool.serve(task, ...) and print nothing before it;\n  'pluginpool new-plugin --lang python NAME' writes one."
	case errors.Is(err, pool.ErrHandshake):
		msg = "not a pluginpool plugin: " + detail + "\n  A plugin must serve through the pluginpool SDK and write nothing to stdout before it:\n  sdk.Serve in Go (package github.com/pluginpool/pluginpool/sdk), pluginpool.serve in Python;\n  'pluginpool new-plugin [--lang python] NAME' writes one."
	case errors.Is(err, pool.ErrInit):
		msg = "Init failed: " + detail + "\n  Init receives the plugin's [plugins.NAME.config] table from the config, as JSON."
	case errors.Is(err, pool.ErrStartTimeout):
		msg = "did not start in time: " + detail + " (start_timeout in the config)"
	default:
		msg = "cannot start: " + detail
	}
	if len(tail) > 0 {
		msg += "\n  Its last stderr lines:\n    " + strings.Join(tail, "\n    ")
	}
	return msg
}

// explainTask turns the sample task's failure into plain words.
func explainTask(err error, item []byte, explicit bool) string {
	var te *pool.TaskError
	switch {
	case errors.As(err, &te) && te.Kind == pool.KindDecode:
		hint := "pass a sample it accepts with --input"
		if explicit {
			hint = "is --input the kind of item this plugin takes?"
		}
		return fmt.Sprintf("the plugin started, but could not decode the sample %s: %s; %s", quote.Item(item), quote.Message(te.Message), hint)
	case errors.As(err, &te) && te.Kind == pool.KindPanic:
		return fmt.Sprintf("the sample task %s panicked: %s", quote.Item(item), indent(strings.TrimPrefix(quote.Message(te.Message), "panic: ")))
	case errors.As(err, &te):
		return fmt.Sprintf("the sample task %s failed: %s", quote.Item(item), quote.Message(te.Message))
	case errors.Is(err, pool.ErrCrashed):
		return fmt.Sprintf("the worker crashed running the sample task %s: %s", quote.Item(item), indent(err.Error()))
	case errors.Is(err, pool.ErrTimeout):
		return fmt.Sprintf("the sample task %s timed out: %v", quote.Item(item), err)
	}
	return fmt.Sprintf("the sample task %s failed: %v", quote.Item(item), err)
}

func indent(s string) string { return strings.ReplaceAll(s, "\n", "\n  ") }
