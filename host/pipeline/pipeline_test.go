package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pluginpool/pluginpool/host/backend"
	"github.com/pluginpool/pluginpool/host/config"
	"github.com/pluginpool/pluginpool/host/pipeline"
	"github.com/pluginpool/pluginpool/host/pool"
	"github.com/pluginpool/pluginpool/internal/testkit"
)

// outcome is what a run produced.
type outcome struct {
	sum      pipeline.Summary
	err      error
	out      string
	failures []*pipeline.Failure
}

// run runs spec under hangBound, collecting the output (when spec has
// none) and the failures.
func run(t *testing.T, spec pipeline.Spec) outcome {
	t.Helper()
	var o outcome
	var out strings.Builder
	if spec.Output == nil && spec.OutputPath == "" {
		spec.Output = &out
	}
	spec.OnFailure = func(f *pipeline.Failure) { o.failures = append(o.failures, f) }
	ctx, cancel := context.WithTimeout(context.Background(), hangBound)
	defer cancel()
	o.sum, o.err = pipeline.Run(ctx, spec)
	if ctx.Err() != nil {
		t.Fatalf("Run did not finish within %s", hangBound)
	}
	o.out = out.String()
	return o
}

func input(lines ...string) io.Reader {
	return strings.NewReader(strings.Join(lines, "\n") + "\n")
}

func numbers(from, to int) io.Reader { return strings.NewReader(testkit.Numbers(from, to)) }

// The seed's demo: double → printer prints "Number: 2" ... "Number: 10",
// in order.
func TestDoubleThenPrinter(t *testing.T) {
	o := run(t, pipeline.Spec{
		Stages: stages(stage(t, "double", 3), stage(t, "printer", 4)),
		Input:  input("1", "2", "3", "4", "5"),
	})
	if o.err != nil {
		t.Fatal(o.err)
	}
	if want := "Number: 2\nNumber: 4\nNumber: 6\nNumber: 8\nNumber: 10\n"; o.out != want {
		t.Errorf("output %q, want %q", o.out, want)
	}
	if o.sum.Items != 5 || o.sum.Succeeded != 5 || o.sum.Failed != 0 || len(o.sum.Stages) != 2 {
		t.Errorf("summary %+v", o.sum)
	}
	for i, st := range o.sum.Stages {
		if st.Succeeded != 5 {
			t.Errorf("stage %d (%s) ran %d items, want 5", i+1, st.Plugin, st.Succeeded)
		}
	}
}

func TestOneStage(t *testing.T) {
	o := run(t, pipeline.Spec{Stages: stages(stage(t, "double", 2)), Input: numbers(1, 100)})
	if o.err != nil {
		t.Fatal(o.err)
	}
	var want strings.Builder
	for i := 1; i <= 100; i++ {
		fmt.Fprintln(&want, 2*i)
	}
	if o.out != want.String() {
		t.Errorf("output %q, want %q", o.out, want.String())
	}
}

// Each item's printed lines come out with it, stage by stage, then its
// value.
func TestOutputLinesInStageOrder(t *testing.T) {
	o := run(t, pipeline.Spec{
		Stages: stages(
			stage(t, "step", 2, "STEP_TAG=a"),
			stage(t, "step", 2, "STEP_TAG=b", "STEP_ADD=100"),
			stage(t, "double", 2),
		),
		Input: input("1", "2", "3"),
	})
	if o.err != nil {
		t.Fatal(o.err)
	}
	want := "a 1\nb 1\n202\na 2\nb 2\n204\na 3\nb 3\n206\n"
	if o.out != want {
		t.Errorf("output %q, want %q", o.out, want)
	}
}

// The case: an item fails in stage 1 of 3. It is reported with its
// line and stage, is absent from the output file, and every other result
// is there; the file is renamed into place and no temporary file is left.
func TestFailureInStage1Of3(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.txt")
	o := run(t, pipeline.Spec{
		Stages: stages(
			stage(t, "step", 2, "STEP_FAIL=3"),
			stage(t, "double", 2),
			stage(t, "printer", 2),
		),
		Input:      input("1", "2", "", "3", "4", "5"), // 3 is on line 4
		OutputPath: path,
	})
	if !errors.Is(o.err, pipeline.ErrFailed) || !errors.Is(o.err, pool.ErrTask) {
		t.Fatalf("err = %v, want ErrFailed wrapping a task error", o.err)
	}
	var fe *pipeline.FailedError
	if !errors.As(o.err, &fe) || fe.Failed != 1 || fe.Items != 5 {
		t.Errorf("err = %#v, want 1 of 5 failed", o.err)
	}
	if len(o.failures) != 1 {
		t.Fatalf("failures %v, want one", o.failures)
	}
	f := o.failures[0]
	if f.Line != 4 || f.Index != 2 || f.Stage != 0 || f.Plugin != "step" || !errors.Is(f, pool.ErrTask) {
		t.Errorf("failure %+v", f)
	}
	if got, want := f.Error(), "line 4: stage 1 (step): no 3"; got != want {
		t.Errorf("failure reads %q, want %q", got, want)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := "Number: 2\nNumber: 4\nNumber: 8\nNumber: 10\n"; string(got) != want {
		t.Errorf("output file %q, want %q", got, want)
	}
	if names := testkit.DirNames(t, dir); !slices.Equal(names, []string{"out.txt"}) {
		t.Errorf("directory holds %v, want only out.txt", names)
	}
	if o.sum.Items != 5 || o.sum.Succeeded != 4 || o.sum.Failed != 1 {
		t.Errorf("summary %+v", o.sum)
	}
}

// Failures in different stages are reported in input order, and items
// that fail in stage 1 while a later one is still in stage 2 keep their
// place, even with room for only two waiting (SetMaxPassing).
func TestFailuresInInputOrder(t *testing.T) {
	defer pipeline.SetMaxPassing(2)()
	const n = 3000
	var fail1, fail2 []string
	var want strings.Builder
	for i := 1; i <= n; i++ {
		switch {
		case i%3 == 0 || i > 1000 && i < 2000: // a long run of failures in stage 1
			fail1 = append(fail1, strconv.Itoa(i))
		case i%5 == 0:
			fail2 = append(fail2, strconv.Itoa(i))
		default:
			fmt.Fprintln(&want, 2*i)
		}
	}
	o := run(t, pipeline.Spec{
		Stages: stages(
			stage(t, "step", 2, "STEP_FAIL="+strings.Join(fail1, ",")),
			stage(t, "step", 2, "STEP_FAIL="+strings.Join(fail2, ","), "STEP_SLEEP_MS=0"),
			stage(t, "double", 2),
		),
		Input: numbers(1, n),
	})
	if !errors.Is(o.err, pipeline.ErrFailed) {
		t.Fatalf("err = %v, want ErrFailed", o.err)
	}
	if o.out != want.String() {
		t.Errorf("output differs from the items that came through (%d bytes, want %d)", len(o.out), want.Len())
	}
	if len(o.failures) != len(fail1)+len(fail2) || o.sum.Failed != len(o.failures) {
		t.Fatalf("%d failures (summary %d), want %d", len(o.failures), o.sum.Failed, len(fail1)+len(fail2))
	}
	for i, f := range o.failures {
		wantStage := 0
		if slices.Contains(fail2, strconv.Itoa(f.Line)) {
			wantStage = 1
		}
		if f.Stage != wantStage || f.Err.Error() != fmt.Sprintf("step: no %d", f.Line) {
			t.Errorf("failure %d: %v (stage %d), want stage %d", i, f, f.Stage, wantStage)
		}
		if i > 0 && f.Line <= o.failures[i-1].Line {
			t.Fatalf("failure %d (line %d) reported after line %d", i, f.Line, o.failures[i-1].Line)
		}
	}
}

// A stage that returns no value for an item (a sink, a filter) ends its
// trip: its lines are written, in place, and later stages never see it. A
// failed item's lines are not written.
func TestNoValueEndsTrip(t *testing.T) {
	o := run(t, pipeline.Spec{
		Stages: stages(
			stage(t, "step", 2, "STEP_TAG=a", "STEP_DROP=2", "STEP_FAIL=3"),
			stage(t, "step", 1, "STEP_TAG=b"),
		),
		Input: input("1", "2", "3", "4"),
	})
	if !errors.Is(o.err, pipeline.ErrFailed) {
		t.Fatalf("err = %v, want ErrFailed", o.err)
	}
	if want := "a 1\nb 1\n1\na 2\na 4\nb 4\n4\n"; o.out != want {
		t.Errorf("output %q, want %q", o.out, want)
	}
	if o.sum.Succeeded != 3 || o.sum.Failed != 1 {
		t.Errorf("summary %+v", o.sum)
	}
}

// Unordered runs deliver every result, failures included.
func TestUnordered(t *testing.T) {
	const n = 20000
	o := run(t, pipeline.Spec{
		Stages: stages(
			stage(t, "step", 2, "STEP_FAIL=7,700,7000"),
			stage(t, "double", 2),
			stage(t, "double", 2),
		),
		Input:     numbers(0, n-1),
		Unordered: true,
	})
	if !errors.Is(o.err, pipeline.ErrFailed) || len(o.failures) != 3 {
		t.Fatalf("err = %v, failures %v; want 3 failed", o.err, o.failures)
	}
	var lines []int
	for _, f := range o.failures {
		lines = append(lines, f.Line)
	}
	slices.Sort(lines)
	if !slices.Equal(lines, []int{8, 701, 7001}) {
		t.Errorf("failed lines %v, want [8 701 7001]", lines)
	}
	var got []int
	for l := range strings.Lines(o.out) {
		v, err := strconv.Atoi(strings.TrimSpace(l))
		if err != nil {
			t.Fatalf("output line %q: %v", l, err)
		}
		got = append(got, v)
	}
	slices.Sort(got)
	var want []int
	for i := range n {
		if i != 7 && i != 700 && i != 7000 {
			want = append(want, 4*i)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %d results, want %d, not the same", len(got), len(want))
	}
}

func TestInputLines(t *testing.T) {
	o := run(t, pipeline.Spec{
		Stages: stages(stage(t, "printer", 1)),
		Input:  input("hello, world", `say "hi"`, "", "ünïcode"),
		Format: config.FormatLines,
	})
	if o.err != nil {
		t.Fatal(o.err)
	}
	if want := "Number: hello, world\nNumber: say \"hi\"\nNumber: ünïcode\n"; o.out != want {
		t.Errorf("output %q, want %q", o.out, want)
	}
}

func TestInputPathAndTooLarge(t *testing.T) {
	path := filepath.Join(t.TempDir(), "in.jsonl")
	if err := os.WriteFile(path, []byte("1\n"+strings.Repeat("9", 100)+"\n3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := stage(t, "double", 1)
	cfg.MaxItemBytes = 16
	o := run(t, pipeline.Spec{Stages: stages(cfg, stage(t, "double", 1)), InputPath: path})
	if len(o.failures) != 1 {
		t.Fatalf("err %v, failures %v; want one", o.err, o.failures)
	}
	var tl *pool.TooLargeError
	if f := o.failures[0]; f.Line != 2 || f.Stage != 0 || !errors.As(f, &tl) || tl.Size != 100 {
		t.Errorf("failure %v, want line 2 stage 1 too large (100 bytes)", f)
	}
	if o.out != "4\n12\n" {
		t.Errorf("output %q", o.out)
	}
}

// Replacing an existing file: the new content appears whole, with the old
// file's permissions, and no temporary file is left.
func TestOutputFileReplaced(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.jsonl")
	if err := os.WriteFile(path, []byte("old\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	var during []string
	o := run(t, pipeline.Spec{
		Stages:     stages(stage(t, "double", 1)),
		Input:      input("1", "2"),
		OutputPath: path,
		Progress: func(done, _ int) {
			if done == 1 {
				during = testkit.DirNames(t, dir)
			}
		},
	})
	if o.err != nil {
		t.Fatal(o.err)
	}
	if len(during) != 2 || !strings.HasPrefix(during[0], ".out.jsonl.tmp-") || during[1] != "out.jsonl" {
		t.Errorf("during the run the directory held %v, want a .out.jsonl.tmp-* file and out.jsonl", during)
	}
	got, err := os.ReadFile(path)
	if err != nil || string(got) != "2\n4\n" {
		t.Errorf("output file %q, %v", got, err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("output file mode %v, %v; want 0640", fi.Mode(), err)
	}
	if names := testkit.DirNames(t, dir); !slices.Equal(names, []string{"out.jsonl"}) {
		t.Errorf("directory holds %v, want only out.jsonl", names)
	}
}

// A stage that keeps crashing degrades its pool: the run stops reading,
// leaves the output file as it was, and every item of the input is
// accounted for: succeeded, failed (reported) or not run (counted).
func TestDegradedStage(t *testing.T) {
	const n = 20_000
	dir := t.TempDir()
	path := filepath.Join(dir, "out.jsonl")
	if err := os.WriteFile(path, []byte("old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	crash := stage(t, "step", 1, "STEP_CRASH_FROM=1000")
	crash.MaxRestarts = 2
	o := run(t, pipeline.Spec{
		Stages:     stages(stage(t, "double", 2), crash),
		Input:      numbers(1, n),
		OutputPath: path,
	})
	var de *pipeline.DegradedError
	if !errors.As(o.err, &de) || !errors.Is(o.err, pool.ErrDegraded) || !errors.Is(o.err, pool.ErrNotRun) {
		t.Fatalf("Run = %v; want a *DegradedError matching pool.ErrDegraded and pool.ErrNotRun", o.err)
	}
	// double doubles first: 1000 is line 500. It fails after its three
	// runs; the crash loop starts at line 501, and the pool degrades there.
	if de.Stage != 1 || de.Plugin != "step" || de.Line != 501 || de.NotRun != n-500 || de.Items != n || de.Partial {
		t.Errorf("DegradedError %+v; want stage 1 (step), %d of %d not run from line 501", de, n-500, n)
	}
	if s := o.sum; s.Items != n || s.Succeeded != 499 || s.Failed != 1 || s.NotRun != n-500 {
		t.Errorf("summary %+v; want %d items: 499 succeeded, 1 failed, %d not run", s, n, n-500)
	}
	if len(o.failures) != 1 || o.failures[0].Line != 500 || !errors.Is(o.failures[0].Err, pool.ErrCrashed) {
		t.Errorf("failures %v; want line 500's crash alone", o.failures)
	}
	if got, err := os.ReadFile(path); err != nil || string(got) != "old\n" {
		t.Errorf("output file %q, %v; want it left as it was", got, err)
	}
	if names := testkit.DirNames(t, dir); !slices.Equal(names, []string{"out.jsonl"}) {
		t.Errorf("directory holds %v, want only out.jsonl", names)
	}
}

// Items given as arguments (Spec.Args, as map takes them) are JSON when
// they are, else strings; failures name them by position and argument.
func TestArgs(t *testing.T) {
	o := run(t, pipeline.Spec{
		Stages: stages(stage(t, "step", 2, "STEP_FAIL=3")),
		Args:   []string{"1", "x", "3", "4"},
	})
	if !errors.Is(o.err, pipeline.ErrFailed) || o.out != "1\n4\n" || o.sum.Items != 4 || o.sum.Failed != 2 {
		t.Fatalf("Run = %+v, %v, output %q; want 1 and 4, two failed", o.sum, o.err, o.out)
	}
	for i, want := range []string{`item 2 (x): stage 1 (step): want an integer, got "x"`, "item 3 (3): stage 1 (step): no 3"} {
		if f := o.failures[i]; f.Error() != want || f.Line != 0 || f.Index != i+1 {
			t.Errorf("failure %d: %q (line %d, index %d), want %q", i, f.Error(), f.Line, f.Index, want)
		}
	}
	if f := o.failures[0]; f.Arg != "x" || f.Where() != "item 2 (x)" {
		t.Errorf("failure 0: Arg %q, Where %q", f.Arg, f.Where())
	}
}

// A degraded stage fed arguments says which argument it stopped at.
func TestArgsDegraded(t *testing.T) {
	args := make([]string, 1500)
	for i := range args {
		args[i] = strconv.Itoa(i + 1)
	}
	crash := stage(t, "step", 1, "STEP_CRASH_FROM=1000")
	crash.MaxRestarts = 2
	o := run(t, pipeline.Spec{Stages: stages(crash), Args: args})
	var de *pipeline.DegradedError
	if !errors.As(o.err, &de) || de.Where() != "item 1001 (1001)" || de.Line != 0 || de.NotRun != 500 || de.Items != 1500 {
		t.Fatalf("Run = %v; want 500 of 1500 not run from item 1001 (1001)", o.err)
	}
	if len(o.failures) != 1 || o.failures[0].Where() != "item 1000 (1000)" {
		t.Errorf("failures %v; want item 1000's crash alone", o.failures)
	}
}

// An interrupted run leaves no output file, or the old one untouched, and
// no temporary file.
func TestCancelLeavesNoOutput(t *testing.T) {
	for _, existing := range []bool{false, true} {
		t.Run(fmt.Sprintf("existing=%v", existing), func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "out.jsonl")
			if existing {
				if err := os.WriteFile(path, []byte("old\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			began := time.Now()
			sum, err := pipeline.Run(ctx, pipeline.Spec{
				Stages: stages(
					stage(t, "double", 2),
					stage(t, "step", 2, "STEP_SLEEP_MS=20"),
				),
				Input:      numbers(1, 1000), // ~10 s at 2 × 50 items/s
				OutputPath: path,
				Progress: func(done, _ int) {
					if done == 5 {
						cancel()
					}
				},
			})
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want context.Canceled", err)
			}
			if d := time.Since(began); d > hangBound/2 {
				t.Errorf("cancelled run took %s", d)
			}
			if sum.Succeeded < 5 || sum.Succeeded > 900 {
				t.Errorf("summary %+v", sum)
			}
			want := []string(nil)
			if existing {
				want = []string{"out.jsonl"}
				if got, _ := os.ReadFile(path); string(got) != "old\n" {
					t.Errorf("old output file now holds %q", got)
				}
			}
			if names := testkit.DirNames(t, dir); !slices.Equal(names, want) {
				t.Errorf("directory holds %v, want %v", names, want)
			}
		})
	}
}

// A stage that cannot start stops the others; the error names the stage;
// no output file is left.
func TestStartFailure(t *testing.T) {
	dir := t.TempDir()
	bad := stage(t, "double", 1)
	bad.Path = filepath.Join(dir, "missing")
	bad.Name = "missing"
	o := run(t, pipeline.Spec{
		Stages:     stages(stage(t, "double", 1), bad),
		Input:      input("1"),
		OutputPath: filepath.Join(dir, "out.jsonl"),
	})
	if !errors.Is(o.err, pool.ErrStart) || !errors.Is(o.err, pool.ErrNotFound) || !strings.HasPrefix(o.err.Error(), "stage 2: missing: ") {
		t.Errorf("err = %v, want stage 2's pool.ErrNotFound", o.err)
	}
	if names := testkit.DirNames(t, dir); len(names) != 0 {
		t.Errorf("directory holds %v, want nothing", names)
	}
}

// A failed write stops the run at once and is returned.
func TestWriteError(t *testing.T) {
	n := 300000
	if testing.Short() {
		n = 100000
	}
	o := run(t, pipeline.Spec{
		Stages: stages(stage(t, "double", 2), stage(t, "double", 2)),
		Input:  numbers(1, n),
		Output: &testkit.FailingWriter{N: 1000, Err: errFull},
	})
	if !errors.Is(o.err, errFull) {
		t.Fatalf("err = %v, want %v", o.err, errFull)
	}
	if o.sum.Items == n {
		t.Logf("the whole input was read before the write failed (%d items)", n)
	}
}

// A read error stops the run; the output file is not committed.
func TestReadError(t *testing.T) {
	dir := t.TempDir()
	in := io.MultiReader(strings.NewReader("1\n2\n"), iotestErrReader{errors.New("device gone")})
	o := run(t, pipeline.Spec{
		Stages:     stages(stage(t, "double", 1)),
		Input:      in,
		InputName:  "the tape",
		OutputPath: filepath.Join(dir, "out"),
	})
	if o.err == nil || o.err.Error() != "reading the tape: device gone" {
		t.Errorf("err = %v", o.err)
	}
	if names := testkit.DirNames(t, dir); len(names) != 0 {
		t.Errorf("directory holds %v, want nothing", names)
	}
}

type iotestErrReader struct{ err error }

func (r iotestErrReader) Read([]byte) (int, error) { return 0, r.err }

// Input that blocks (a pipe nobody closes) does not keep a cancelled run
// from returning when AbortInput unblocks it.
func TestAbortInput(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	go func() {
		fmt.Fprintln(pw, "1")
		fmt.Fprintln(pw, "2")
	}()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var once sync.Once
	aborted := make(chan struct{})
	sum, err := pipeline.Run(ctx, pipeline.Spec{
		Stages:     stages(stage(t, "double", 1), stage(t, "double", 1)),
		Input:      pr,
		AbortInput: func() { once.Do(func() { close(aborted); pr.CloseWithError(errors.New("aborted")) }) },
		Output:     io.Discard,
		Progress: func(done, _ int) {
			if done == 2 {
				cancel()
			}
		},
	})
	if !errors.Is(err, context.Canceled) || sum.Succeeded != 2 {
		t.Errorf("Run = %+v, %v; want 2 items done, then context.Canceled", sum, err)
	}
	select {
	case <-aborted:
	default:
		t.Error("AbortInput was not called")
	}
}

func TestSpecErrors(t *testing.T) {
	one := stages(pool.Config{Path: "x"})
	for _, spec := range []pipeline.Spec{
		{Input: input("1")},
		{Stages: one},
		{Stages: one, Input: input("1"), InputPath: "in"},
		{Stages: one, Input: input("1"), Output: io.Discard, OutputPath: "out"},
		{Stages: one, Input: input("1"), Format: "csv"},
	} {
		if _, err := pipeline.Run(context.Background(), spec); !errors.Is(err, pipeline.ErrInvalidSpec) {
			t.Errorf("Run(%+v) = %v, want ErrInvalidSpec", spec, err)
		}
	}
}

func TestFromConfig(t *testing.T) {
	dir := t.TempDir()
	f, err := config.Parse("pool.toml", []byte(`
[pool]
workers = 2
[plugins.double]
path = "bin/double"
[plugins.printer]
path = "bin/printer"
[plugins.printer.config]
format = "N=%v"
[pipelines.p]
stages = ["double", {plugin = "printer", workers = 1}]
input = "in.txt"
input_format = "lines"
output = "out/result.jsonl"
ordered = false
`), dir)
	if err != nil {
		t.Fatal(err)
	}
	var cfgs []pool.Config // what each stage is started with
	spec, err := pipeline.FromConfig(f, f.Pipelines["p"], func(cfg pool.Config) backend.StartFunc {
		cfgs = append(cfgs, cfg)
		return pool.Starter(cfg)
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(spec.Stages) != 2 || len(cfgs) != 2 || cfgs[0].Name != "double" || cfgs[0].Workers != 2 ||
		cfgs[1].Name != "printer" || cfgs[1].Workers != 1 ||
		string(cfgs[1].PluginConfig) != `{"format":"N=%v"}` ||
		cfgs[0].Path != filepath.Join(dir, "bin/double") {
		t.Errorf("stages %+v", cfgs)
	}
	if spec.InputPath != filepath.Join(dir, "in.txt") || spec.Format != config.FormatLines ||
		spec.OutputPath != filepath.Join(dir, "out/result.jsonl") || !spec.Unordered || spec.Name != "p" {
		t.Errorf("spec %+v", spec)
	}
	if _, err := pipeline.FromConfig(f, nil, pool.Starter); !errors.Is(err, pipeline.ErrInvalidSpec) {
		t.Errorf("FromConfig(nil pipeline) = %v", err)
	}
}

// The scale test: 1,000,000 items through double → double,
// ordered, in constant memory. Under -race (~10x slower) it runs 200,000.
func TestMillionItems(t *testing.T) {
	n := 1_000_000
	if testing.Short() {
		n = 200_000
	}
	check := &checker{t: t}
	began := time.Now()
	o := run(t, pipeline.Spec{
		Stages: stages(stage(t, "double", 2), stage(t, "double", 2)),
		Input:  &counter{n: n},
		Output: check,
	})
	if o.err != nil {
		t.Fatal(o.err)
	}
	t.Logf("%d items through 2 stages in %s", n, time.Since(began).Round(time.Millisecond))
	check.done()
	if check.count != n || o.sum.Items != n || o.sum.Succeeded != n {
		t.Errorf("%d results, summary %+v; want %d", check.count, o.sum, n)
	}
	// sum of 4i for i < n
	if want := 2 * int64(n) * int64(n-1); check.sum != want {
		t.Errorf("checksum %d, want %d", check.sum, want)
	}
	for i, st := range o.sum.Stages {
		if st.Succeeded != int64(n) {
			t.Errorf("stage %d ran %d items", i+1, st.Succeeded)
		}
	}
}

// counter reads as the lines "0\n" ... "n-1\n", made as they are read.
type counter struct {
	i, n int
	buf  []byte
}

func (c *counter) Read(p []byte) (int, error) {
	for len(c.buf) < len(p) && c.i < c.n {
		c.buf = strconv.AppendInt(c.buf, int64(c.i), 10)
		c.buf = append(c.buf, '\n')
		c.i++
	}
	if len(c.buf) == 0 {
		return 0, io.EOF
	}
	k := copy(p, c.buf)
	c.buf = c.buf[:copy(c.buf, c.buf[k:])]
	return k, nil
}

// checker checks that result lines are 4i in order, and sums them.
type checker struct {
	t     *testing.T
	part  []byte
	count int
	sum   int64
	bad   int
}

func (c *checker) Write(p []byte) (int, error) {
	n := len(p)
	for {
		i := slices.Index(p, '\n')
		if i < 0 {
			c.part = append(c.part, p...)
			return n, nil
		}
		line := p[:i]
		if len(c.part) > 0 {
			line = append(c.part, line...)
			c.part = c.part[:0]
		}
		v, err := strconv.ParseInt(string(line), 10, 64)
		if (err != nil || v != 4*int64(c.count)) && c.bad < 5 {
			c.bad++
			c.t.Errorf("result %d is %q, want %d", c.count, line, 4*c.count)
		}
		c.sum += v
		c.count++
		p = p[i+1:]
	}
}

func (c *checker) done() {
	if len(c.part) > 0 {
		c.t.Errorf("output ends with a partial line %q", c.part)
	}
}
