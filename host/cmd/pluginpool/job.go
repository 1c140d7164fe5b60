package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/pluginpool/pluginpool/host/backend"
	"github.com/pluginpool/pluginpool/host/pipeline"
	"github.com/pluginpool/pluginpool/internal/quote"
)

// job is how map, apply and run report a pipeline.Run: the same run,
// told in each command's words. map and apply are a pipeline of one
// stage, named by its plugin ("line 3: double: ..."); run names stages
// ("line 3: stage 1 (double): ...").
type job struct {
	*globalOptions
	// single: map or apply, rather than run.
	single bool
	// name labels the progress bar; total is the number of items, -1
	// when unknown.
	name  string
	total int
	// stats prints each stage's statistics at the end (--stats).
	stats bool
	// bar: the command takes --progress (apply does not).
	bar bool
}

// run runs spec and returns the command's outcome: nil, or an error
// status maps to the exit status. Failed items are reported on stderr as
// they come; a summary, when there is one, is the returned error's
// message. spec's OnFailure, Progress and Started are the job's.
func (j *job) run(ctx context.Context, spec pipeline.Spec) error {
	var prog *progress
	if j.bar {
		// Before any stage starts: their loggers then write through the
		// bar's stderr, which wipes the bar before each line.
		prog = newProgress(j.globalOptions, j.name, j.total)
		defer prog.Finish()
	}
	var labels []string
	if !j.single {
		labels = []string{"stage"}
	}
	metrics, err := startMetrics(j.globalOptions, labels...)
	if err != nil {
		return err
	}
	defer metrics.Close()

	if spec.Input != nil {
		// On a signal, or when the run stops early, let go of the input
		// at once: the first stage's feeder may be blocked reading it.
		in, abort := abortable(spec.Input)
		var once sync.Once
		stop := func() { once.Do(abort) }
		defer stop()
		spec.Input, spec.AbortInput = in, stop
	}
	var began time.Time
	spec.Started = func(es []backend.Executor) {
		began = time.Now()
		for i, e := range es {
			if j.single {
				metrics.Add(e)
			} else {
				metrics.Add(e, strconv.Itoa(i+1))
			}
		}
	}
	done := prog.counter()
	spec.Progress = func(int, int) { done.Inc() } // calls are never concurrent
	spec.OnFailure = j.report

	sum, err := pipeline.Run(ctx, spec)
	done.Flush()
	prog.Finish()
	if j.stats && sum.Stages != nil {
		d := time.Since(began)
		for i, st := range sum.Stages {
			if !j.single {
				st.Plugin = fmt.Sprintf("stage %d (%s)", i+1, st.Plugin)
			}
			printStats(j.io.Err, st, d)
		}
	}
	return j.outcome(ctx, spec, sum, err)
}

// report writes one failed item to stderr.
func (j *job) report(f *pipeline.Failure) {
	msg := f.Error()
	if j.single {
		msg = f.Where() + ": " + f.Err.Error()
	}
	fmt.Fprintf(j.io.Err, "pluginpool: %s\n", quote.Text(msg))
}

// outcome turns what pipeline.Run returned into the command's.
func (j *job) outcome(ctx context.Context, spec pipeline.Spec, sum pipeline.Summary, err error) error {
	var (
		stopped *pipeline.DegradedError
		stage   *pipeline.StageError
	)
	switch {
	case ctx.Err() != nil:
		return ctx.Err() // a signal: status says 128+N
	case err == nil:
		return nil
	case errors.As(err, &stopped):
		// One summary, not a line per item: they share one cause.
		return j.notRun(spec, sum, stopped)
	case errors.Is(err, pipeline.ErrFailed):
		code := ExitFailed
		if errors.Is(err, backend.ErrDegraded) {
			code = ExitStart // degraded, with nothing left to run
		}
		if j.single && sum.Items <= 1 {
			return quiet(code) // the item's own report says it all
		}
		return exitf(code, "%d of %d items failed", sum.Failed, sum.Items)
	case j.single && errors.As(err, &stage):
		return stage.Err // one stage: its number says nothing
	case errors.As(err, &stage), errors.Is(err, backend.ErrDegraded):
		return err // status: could not start, or degraded
	case errors.Is(err, syscall.EPIPE):
		return err // status: 141, quietly
	}
	// The input could not be read, the output not written.
	return exitf(ExitFailed, "%v", err)
}

// notRun says why a degraded run stopped, once, and sums up the items it
// did not run. An output file was left as it was.
func (j *job) notRun(spec pipeline.Spec, sum pipeline.Summary, d *pipeline.DegradedError) error {
	var msg string
	if j.single {
		fmt.Fprintf(j.io.Err, "pluginpool: %s\n", quote.Text(d.Err.Error()))
		if d.Partial {
			msg = fmt.Sprintf("at least %d items were not run, from %s, because the pool degraded (the input was not read to its end: %v)", d.NotRun, d.Where(), d.InputErr)
		} else {
			msg = fmt.Sprintf("%d of %d items were not run, from %s, because the pool degraded", d.NotRun, d.Items, d.Where())
		}
	} else {
		fmt.Fprintf(j.io.Err, "pluginpool: stage %d: %s\n", d.Stage+1, quote.Text(d.Err.Error()))
		msg = fmt.Sprintf("%d of %d items were not run, from %s, because stage %d (%s) degraded", d.NotRun, d.Items, d.Where(), d.Stage+1, d.Plugin)
		if d.Partial {
			msg = "at least " + msg + " (the input was not read to its end)"
		}
	}
	if sum.Failed > 0 {
		msg += fmt.Sprintf("; %d failed", sum.Failed)
	}
	if spec.OutputPath != "" {
		msg += "; " + spec.OutputPath + " is left as it was"
	}
	return exitf(ExitStart, "%s", msg)
}

// abortable returns a reader whose blocked Read can be abandoned. A read
// from a pipe or terminal blocks in the kernel and cannot be interrupted, so
// it runs on a goroutine of its own; abort makes Read return at once and
// leaves that goroutine to end with the process. Regular files never block
// and are read directly. abort is safe to call more than once, from any
// goroutine.
func abortable(r io.Reader) (io.Reader, func()) {
	if f, ok := r.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
			return r, func() {}
		}
	}
	ar := &abortReader{chunks: make(chan chunk, 2), done: make(chan struct{})}
	go ar.pump(r)
	var once sync.Once
	return ar, func() { once.Do(func() { close(ar.done) }) }
}

type chunk struct {
	b   []byte
	err error
}

type abortReader struct {
	chunks chan chunk
	done   chan struct{}
	cur    []byte
	err    error
}

func (a *abortReader) pump(r io.Reader) {
	for {
		buf := make([]byte, 256<<10)
		n, err := r.Read(buf)
		select {
		case a.chunks <- chunk{buf[:n], err}:
		case <-a.done:
			return
		}
		if err != nil {
			return
		}
	}
}

var errAborted = errors.New("input abandoned")

func (a *abortReader) Read(p []byte) (int, error) {
	for len(a.cur) == 0 {
		if a.err != nil {
			return 0, a.err
		}
		select {
		case c := <-a.chunks:
			a.cur, a.err = c.b, c.err
		case <-a.done:
			return 0, errAborted
		}
	}
	n := copy(p, a.cur)
	a.cur = a.cur[n:]
	return n, nil
}
