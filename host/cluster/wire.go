package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/pluginpool/pluginpool/host/cluster/clusterpb"
	"github.com/pluginpool/pluginpool/host/pool"
)

// Room left in a message for everything but item bytes: the Answer's or
// Task's own fields and NATS headers.
const (
	messageOverhead = 4 << 10
	perItemOverhead = 16 // an end offset, and slack for an index
)

// encodeAnswers encodes the results of one delivery of batch seq as Answer
// messages of at most limit bytes each, contiguous ranges in order. A
// result that cannot fit in a message alone becomes a *PayloadError.
func encodeAnswers(seq uint64, results []pool.Result, worker string, delivery uint32, busy time.Duration, limit int) ([][]byte, error) {
	room := limit - messageOverhead
	var msgs [][]byte
	a := &clusterpb.Answer{Seq: seq, Worker: worker, Delivery: delivery}
	size := 0
	flush := func(next int) error {
		b, err := proto.Marshal(a)
		if err != nil {
			return err
		}
		msgs = append(msgs, b)
		a = &clusterpb.Answer{Seq: seq, First: uint32(next), Worker: worker, Delivery: delivery}
		size = 0
		return nil
	}
	for i := range results {
		r := &results[i]
		n := itemSize(r)
		if n > room {
			r = &pool.Result{Err: &PayloadError{Size: n, Limit: limit, Result: true}}
			n = itemSize(r)
		}
		if size > 0 && size+n > room {
			if err := flush(i); err != nil {
				return nil, err
			}
		}
		k := uint32(i) - a.First
		if r.Err != nil {
			a.Failures = append(a.Failures, failureOf(k, r.Err))
		} else {
			a.Data = append(a.Data, r.Value...)
		}
		a.Ends = append(a.Ends, uint32(len(a.Data)))
		if len(r.Output) > 0 {
			lines := make([][]byte, len(r.Output))
			for j, l := range r.Output {
				lines[j] = []byte(l)
			}
			a.Output = append(a.Output, &clusterpb.Printed{Index: k, Lines: lines})
		}
		size += n
	}
	a.Last, a.BusyNs = true, uint64(busy)
	if err := flush(len(results)); err != nil {
		return nil, err
	}
	return msgs, nil
}

// itemSize estimates the bytes result r takes in an Answer.
func itemSize(r *pool.Result) int {
	n := len(r.Value) + perItemOverhead
	if r.Err != nil {
		n += 2*len(r.Err.Error()) + 64 // its text, and a task's message
		var ce *pool.CrashError
		if errors.As(r.Err, &ce) {
			for _, l := range ce.Stderr {
				n += len(l) + 4
			}
		}
	}
	for _, l := range r.Output {
		n += len(l) + 4
	}
	return n
}

// failureOf describes err, the error of item index, for the host to
// rebuild.
func failureOf(index uint32, err error) *clusterpb.Failure {
	f := &clusterpb.Failure{Index: index, Kind: clusterpb.Kind_KIND_OTHER, Text: []byte(err.Error())}
	var (
		te *pool.TaskError
		ce *pool.CrashError
		to *pool.TimeoutError
		tl *pool.TooLargeError
		pe *PayloadError
		le *LostError
	)
	switch {
	case errors.As(err, &te):
		f.Kind = taskKinds[te.Kind]
		f.Plugin, f.Message, f.Attempts = te.Plugin, []byte(te.Message), uint32(te.Attempt)
	case errors.As(err, &ce):
		f.Kind = clusterpb.Kind_KIND_CRASHED
		f.Plugin, f.Slot, f.Pid, f.Exit, f.Attempts = ce.Plugin, int32(ce.Slot), int64(ce.Pid), ce.Exit, uint32(ce.Attempts)
		for _, l := range ce.Stderr {
			f.Stderr = append(f.Stderr, []byte(l))
		}
	case errors.As(err, &to):
		f.Kind = clusterpb.Kind_KIND_TIMEOUT
		f.Plugin, f.TimeoutNs, f.Pid, f.Killed = to.Plugin, int64(to.Timeout), int64(to.Pid), to.Killed
	case errors.As(err, &pe):
		f.Kind = clusterpb.Kind_KIND_TOO_LARGE
		f.Size, f.Limit, f.Payload, f.Result = uint64(pe.Size), uint64(pe.Limit), true, pe.Result
	case errors.As(err, &tl):
		f.Kind = clusterpb.Kind_KIND_TOO_LARGE
		f.Size, f.Limit = uint64(tl.Size), uint64(tl.Limit)
	case errors.As(err, &le):
		f.Kind = clusterpb.Kind_KIND_LOST
		f.Plugin, f.Deliveries, f.Message = le.Plugin, uint32(le.Deliveries), []byte(le.Reason)
	case errors.Is(err, pool.ErrDegraded):
		f.Kind = clusterpb.Kind_KIND_DEGRADED
	case errors.Is(err, pool.ErrClosed):
		f.Kind = clusterpb.Kind_KIND_CLOSED
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		f.Kind = clusterpb.Kind_KIND_CANCELED
		f.Message = f.Text
	}
	return f
}

var taskKinds = map[pool.TaskErrorKind]clusterpb.Kind{
	pool.KindError:    clusterpb.Kind_KIND_TASK,
	pool.KindPanic:    clusterpb.Kind_KIND_PANIC,
	pool.KindDecode:   clusterpb.Kind_KIND_DECODE,
	pool.KindCanceled: clusterpb.Kind_KIND_CANCELED,
}

// errorOf rebuilds the error a worker described. Task errors come back as
// *pool.TaskError; the others are wrapped in a *RemoteError naming the
// worker.
func errorOf(f *clusterpb.Failure, worker string) error {
	remote := func(err error) error { return &RemoteError{Worker: worker, Err: err} }
	switch f.Kind {
	case clusterpb.Kind_KIND_TASK, clusterpb.Kind_KIND_PANIC, clusterpb.Kind_KIND_DECODE, clusterpb.Kind_KIND_CANCELED:
		kind := pool.KindError
		for k, v := range taskKinds {
			if v == f.Kind {
				kind = k
			}
		}
		return &pool.TaskError{Plugin: f.Plugin, Kind: kind, Message: string(f.Message), Attempt: int(f.Attempts)}
	case clusterpb.Kind_KIND_CRASHED:
		stderr := make([]string, len(f.Stderr))
		for i, l := range f.Stderr {
			stderr[i] = string(l)
		}
		return remote(&pool.CrashError{Plugin: f.Plugin, Slot: int(f.Slot), Pid: int(f.Pid), Exit: f.Exit, Attempts: int(f.Attempts), Stderr: stderr})
	case clusterpb.Kind_KIND_TIMEOUT:
		return remote(&pool.TimeoutError{Plugin: f.Plugin, Timeout: time.Duration(f.TimeoutNs), Pid: int(f.Pid), Killed: f.Killed})
	case clusterpb.Kind_KIND_TOO_LARGE:
		if f.Payload {
			return &PayloadError{Size: int(f.Size), Limit: int(f.Limit), Result: f.Result}
		}
		return &pool.TooLargeError{Size: int(f.Size), Limit: int(f.Limit)}
	case clusterpb.Kind_KIND_LOST:
		return &LostError{Plugin: f.Plugin, Deliveries: int(f.Deliveries), Reason: string(f.Message)}
	case clusterpb.Kind_KIND_DEGRADED:
		return remote(&textError{text: string(f.Text), is: pool.ErrDegraded})
	case clusterpb.Kind_KIND_CLOSED:
		return remote(&textError{text: string(f.Text), is: pool.ErrClosed})
	}
	return remote(&textError{text: string(f.Text)})
}

// textError is an error known by its text and, when set, a sentinel.
type textError struct {
	text string
	is   error
}

func (e *textError) Error() string { return e.text }

func (e *textError) Is(target error) bool { return e.is != nil && target == e.is }

// answer is a decoded Answer, read item by item.
type answer struct {
	*clusterpb.Answer
	failed  map[uint32]*clusterpb.Failure
	printed map[uint32][]string
}

func decodeAnswer(data []byte) (*answer, error) {
	a := &answer{Answer: &clusterpb.Answer{}}
	if err := proto.Unmarshal(data, a.Answer); err != nil {
		return nil, fmt.Errorf("undecodable answer: %w", err)
	}
	n := uint32(len(a.Ends))
	prev := uint32(0)
	for _, e := range a.Ends {
		if e < prev || int(e) > len(a.Data) {
			return nil, errors.New("undecodable answer: item ends out of order or past the data")
		}
		prev = e
	}
	if len(a.Failures) > 0 {
		a.failed = make(map[uint32]*clusterpb.Failure, len(a.Failures))
		for _, f := range a.Failures {
			if f.Index >= n {
				return nil, fmt.Errorf("undecodable answer: failure of item %d of %d", f.Index, n)
			}
			a.failed[f.Index] = f
		}
	}
	if len(a.Output) > 0 {
		a.printed = make(map[uint32][]string, len(a.Output))
		for _, o := range a.Output {
			if o.Index >= n {
				return nil, fmt.Errorf("undecodable answer: output of item %d of %d", o.Index, n)
			}
			lines := make([]string, len(o.Lines))
			for i, l := range o.Lines {
				lines[i] = string(l)
			}
			a.printed[o.Index] = lines
		}
	}
	return a, nil
}

// len is the number of items the answer covers.
func (a *answer) len() int { return len(a.Ends) }

// result returns item i of the answer (0 = its first).
func (a *answer) result(i int) pool.Result {
	k := uint32(i)
	r := pool.Result{Output: a.printed[k]}
	if f := a.failed[k]; f != nil {
		r.Err = errorOf(f, a.Worker)
		return r
	}
	lo := uint32(0)
	if i > 0 {
		lo = a.Ends[i-1]
	}
	if hi := a.Ends[i]; hi > lo {
		r.Value = a.Data[lo:hi:hi]
	}
	return r
}

// encodeTask encodes batch seq of items (data cut at ends), starting at
// job-wide index first.
func encodeTask(seq uint64, first int, data []byte, ends []uint32) ([]byte, error) {
	return proto.Marshal(&clusterpb.Task{Seq: seq, First: uint64(first), Data: data, Ends: ends})
}

func decodeTask(data []byte) (*clusterpb.Task, error) {
	t := &clusterpb.Task{}
	if err := proto.Unmarshal(data, t); err != nil {
		return nil, fmt.Errorf("undecodable batch: %w", err)
	}
	prev := uint32(0)
	for _, e := range t.Ends {
		if e < prev || int(e) > len(t.Data) {
			return nil, errors.New("undecodable batch: item ends out of order or past the data")
		}
		prev = e
	}
	return t, nil
}

// items slices a task's data into its items (no copy).
func items(t *clusterpb.Task) [][]byte {
	out := make([][]byte, len(t.Ends))
	lo := uint32(0)
	for i, hi := range t.Ends {
		out[i] = t.Data[lo:hi:hi]
		lo = hi
	}
	return out
}
