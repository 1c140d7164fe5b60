package main

import (
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
)

// Row is one line of the table: one figure of one workload.
type Row struct {
	ID     string `json:"id"`   // "W1", "W3 p50"
	What   string `json:"what"` // one line: what is measured
	Unit   string `json:"unit"` // "s", "µs", "x" (speed-up), "MiB"
	Target string `json:"target"`

	PP    *float64 `json:"pluginpool,omitempty"`
	Py    *float64 `json:"python,omitempty"`
	Floor *float64 `json:"floor,omitempty"` // W1, W2: the no-IPC Go floor

	Ratio      *float64 `json:"ratio,omitempty"`       // PP / Py
	FloorRatio *float64 `json:"floor_ratio,omitempty"` // PP / Floor
	Pass       *bool    `json:"pass,omitempty"`        // nil: could not tell

	PPNote string   `json:"pluginpool_note,omitempty"` // the cell when PP is nil
	PyNote string   `json:"python_note,omitempty"`     // the cell when Py is nil
	Err    string   `json:"error,omitempty"`           // a run failed or gave wrong output
	Notes  []string `json:"notes,omitempty"`           // what is included, spreads

	Samples map[string][]float64 `json:"samples,omitempty"` // every run, in Unit
	Others  float64              `json:"others_cpu_share"`  // CPU share other processes took meanwhile
}

func (r *Row) fail(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if r.Err == "" {
		r.Err = msg
	} else {
		r.Err += "; " + msg
	}
}

func (r *Row) note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

func (r *Row) samples(key string, xs []float64) {
	if r.Samples == nil {
		r.Samples = map[string][]float64{}
	}
	r.Samples[key] = xs
}

// finish computes the ratios and the verdict: pass decides from the row,
// and says whether it could (a target relative to Python cannot be judged
// without Python).
func (r *Row) finish(pass func(r *Row) (ok, known bool)) {
	if r.PP != nil && r.Py != nil && *r.Py != 0 {
		r.Ratio = ptr(*r.PP / *r.Py)
	}
	if r.PP != nil && r.Floor != nil && *r.Floor != 0 {
		r.FloorRatio = ptr(*r.PP / *r.Floor)
	}
	if r.PP != nil && r.Err == "" && pass != nil {
		if ok, known := pass(r); known {
			r.Pass = ptr(ok)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func printTable(w io.Writer, h Header, rows []Row) {
	fmt.Fprintf(w, "pluginpool vs Python multiprocessing — %d cores (runtime.NumCPU), %s\n", h.Cores, h.CPU)
	fmt.Fprintf(w, "%s; %s; took %s\n", h.Go, h.Python, h.Elapsed)
	fmt.Fprintf(w, "load average %s; %s\n", h.Load, othersNote(h.Others))
	fmt.Fprintln(w, "medians of several runs; ratio = pluginpool / Python; floor = the same job in one Go process, no IPC (W8: on the local pool)")
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "workload\tpluginpool\tpython\tratio\tfloor\tvs floor\ttarget\tresult\t")
	for _, r := range rows {
		pp := r.PPNote
		if r.PP != nil {
			pp = format(*r.PP, r.Unit)
		}
		py := r.PyNote
		if r.Py != nil {
			py = format(*r.Py, r.Unit)
		}
		result := "—"
		switch {
		case r.Err != "":
			result = "ERROR"
		case r.Pass != nil && *r.Pass:
			result = "PASS"
		case r.Pass != nil:
			result = "MISS"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.ID, pp, py,
			ratio(r.Ratio, 3), value(r.Floor, r.Unit), ratio(r.FloorRatio, 2)+times(r.FloorRatio), r.Target, result)
	}
	tw.Flush()
	fmt.Fprintln(w)
	for _, r := range rows {
		fmt.Fprintf(w, "%s: %s\n", r.ID, r.What)
		for _, n := range r.Notes {
			fmt.Fprintf(w, "    %s\n", n)
		}
		if r.Err != "" {
			fmt.Fprintf(w, "    ERROR: %s\n", r.Err)
		}
	}
}

func value(v *float64, unit string) string {
	if v == nil {
		return "—"
	}
	return format(*v, unit)
}

func ratio(v *float64, digits int) string {
	if v == nil {
		return "—"
	}
	return trimFloat(*v, digits)
}

func times(v *float64) string {
	if v == nil {
		return ""
	}
	return "x"
}

// format prints v in unit with about three significant digits.
func format(v float64, unit string) string {
	switch unit {
	case "s":
		if v < 1 {
			return fmt.Sprintf("%.1f ms", v*1e3)
		}
		return fmt.Sprintf("%.2f s", v)
	case "µs":
		return fmt.Sprintf("%.0f µs", v)
	case "x":
		return fmt.Sprintf("%.2fx", v)
	case "MiB":
		return fmt.Sprintf("%.1f MiB", v)
	}
	return trimFloat(v, 3) + " " + unit
}

func trimFloat(v float64, digits int) string {
	if v != 0 && math.Abs(v) < 0.1 {
		digits++
	}
	s := fmt.Sprintf("%.*f", digits, v)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}
