package main

import (
	"context"
	"errors"
	"fmt"
	"syscall"

	"github.com/pluginpool/pluginpool/host/backend"
	"github.com/pluginpool/pluginpool/host/cluster"
	"github.com/pluginpool/pluginpool/host/config"
	"github.com/pluginpool/pluginpool/host/pipeline"
	"github.com/pluginpool/pluginpool/host/pool"
)

// ExitCode is the process exit status.
type ExitCode int

// Exit codes. After signal N the status is 128+N (exitSignal).
const (
	ExitOK     ExitCode = 0 // every item succeeded
	ExitFailed ExitCode = 1 // some items failed, or the input could not be read
	ExitUsage  ExitCode = 2 // bad command line or config
	ExitStart  ExitCode = 3 // a plugin could not start, or its pool degraded
)

// exitSignal is the conventional status after signal sig: 128+sig.
func exitSignal(sig syscall.Signal) ExitCode { return ExitCode(128 + int(sig)) }

// exitError ends a command with a status of its choosing: Main prints its
// error, if it has one, and exits with code. A command returns one when it
// composed the message itself ("3 of 5 items failed") or has already said
// everything on stderr (err nil); any other error is classified by status.
type exitError struct {
	code ExitCode
	err  error // nil: nothing more to say
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// exitf returns an exitError with code, whose message Main prints.
func exitf(code ExitCode, format string, args ...any) error {
	return &exitError{code: code, err: fmt.Errorf(format, args...)}
}

// quiet returns an exitError with code and nothing more to say: what went
// wrong is on stderr already.
func quiet(code ExitCode) error { return &exitError{code: code} }

// usageError is a bad command line: status 2.
type usageError struct{ error }

// signalError is the cancellation cause after a signal.
type signalError struct{ sig syscall.Signal }

func (e *signalError) Error() string { return "interrupted by " + e.sig.String() }

// status is the one place an outcome becomes an exit status. ctx is
// Main's: a signal that cancelled it decides, whatever the command was
// doing (128+N, nothing more said). Otherwise err does: nil is 0; an
// exitError carries its own; the rest by what they match. It returns the
// error to print, if any.
func status(ctx context.Context, err error) (ExitCode, error) {
	if se, ok := errors.AsType[*signalError](context.Cause(ctx)); ok {
		return exitSignal(se.sig), nil
	}
	if err == nil {
		return ExitOK, nil
	}
	if ee, ok := errors.AsType[*exitError](err); ok {
		return ee.code, ee.err
	}
	switch {
	case errors.Is(err, syscall.EPIPE):
		// stdout was closed early (| head): stop quietly, as a
		// SIGPIPE-killed process would.
		return exitSignal(syscall.SIGPIPE), nil
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		// Cancelled by Main's caller rather than a signal: the work did
		// not complete.
		return ExitFailed, nil
	case errors.As(err, new(usageError)), errors.Is(err, config.ErrInvalid), errors.Is(err, cluster.ErrInvalidConfig),
		errors.Is(err, pool.ErrInvalidConfig):
		return ExitUsage, err
	case errors.Is(err, backend.ErrStart), errors.Is(err, backend.ErrNotFound), errors.Is(err, cluster.ErrConnect),
		errors.Is(err, backend.ErrDegraded):
		// The plugin could not start (or the cluster be reached), or
		// its workers kept dying.
		return ExitStart, err
	case errors.Is(err, pipeline.ErrFailed):
		return ExitFailed, err
	}
	// What cobra refuses (an unknown command or flag, the wrong number of
	// arguments), and configs that do not load.
	return ExitUsage, err
}
