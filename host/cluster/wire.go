package cluster

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"sync"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/pluginpool/pluginpool/host/backend"
	"github.com/pluginpool/pluginpool/host/cluster/clusterpb"
	"github.com/pluginpool/pluginpool/host/pool"
)

// Room left in a message for everything but item bytes: the Answer's or
// Task's own fields and NATS headers.
const (
	messageOverhead = 4 << 10
	perItemOverhead = 16 // an end offset, and slack for an index
)

// answerBuilder collects the results of one delivery of batch seq and
// cuts them into Answer messages of at most limit bytes, contiguous item
// ranges in order. It encodes the protobuf by hand into buffers it
// reuses: the generated Marshal would copy every value once more. A
// result that cannot fit in a message alone becomes a *PayloadError.
type answerBuilder struct {
	itemNs   uint64 // set before the last cut: see Answer.item_ns
	seq      uint64
	worker   string
	delivery uint32
	limit    int

	first    int // index within the batch of the part's first item
	n        int // items in the part
	askAt    int // put asks whether a part is due when the part has this many items
	size     int // estimated bytes of the part
	data     []byte
	ends     []uint32
	failures [][]byte // encoded Failure messages
	output   [][]byte // encoded Printed messages
	msg      []byte   // the last message built, reused
}

func newAnswerBuilder(seq uint64, worker string, delivery uint32, limit int) *answerBuilder {
	return &answerBuilder{seq: seq, worker: worker, delivery: delivery, limit: limit, askAt: clockEvery - 1}
}

// builders keeps answer builders, with their buffers, between batches.
var builders = sync.Pool{New: func() any { return &answerBuilder{} }}

// takeBuilder returns a builder from builders, set up like
// newAnswerBuilder's; give it back with builders.Put once its last
// message is sent.
func takeBuilder(seq uint64, worker string, delivery uint32, limit int) *answerBuilder {
	a := builders.Get().(*answerBuilder)
	*a = answerBuilder{seq: seq, worker: worker, delivery: delivery, limit: limit, askAt: clockEvery - 1,
		data: a.data[:0], ends: a.ends[:0], failures: a.failures[:0], output: a.output[:0], msg: a.msg[:0]}
	return a
}

// room is what a part may hold besides its own fields.
func (a *answerBuilder) room() int { return a.limit - messageOverhead }

// full reports whether adding r would overflow the part.
func (a *answerBuilder) full(r *backend.Result) bool {
	return a.n > 0 && a.size+itemSize(r) > a.room()
}

// add appends result r (the next item).
func (a *answerBuilder) add(r backend.Result) {
	size := itemSize(&r)
	if size > a.room() {
		r = backend.Result{Err: &PayloadError{Size: size, Limit: a.limit, Result: true}}
		size = itemSize(&r)
	}
	k := uint32(a.n)
	if r.Err != nil {
		b, _ := proto.Marshal(failureOf(k, r.Err))
		a.failures = append(a.failures, b)
	} else {
		a.data = append(a.data, r.Value...)
	}
	a.ends = append(a.ends, uint32(len(a.data)))
	if len(r.Output) > 0 {
		lines := make([][]byte, len(r.Output))
		for j, l := range r.Output {
			lines[j] = []byte(l)
		}
		b, _ := proto.Marshal(&clusterpb.Printed{Index: k, Lines: lines})
		a.output = append(a.output, b)
	}
	a.size += size
	a.n++
}

// put adds rs, the next items, calling send (with false) to cut and send
// a part whenever the next item would overflow it, and whenever due
// reports true. due is asked once per clockEvery items of a part, before
// its clockEvery-th, 2*clockEvery-th... item. put reports false as soon
// as send does.
func (a *answerBuilder) put(rs []backend.Result, due func() bool, send func(last bool) bool) bool {
	for {
		k := a.addRun(rs)
		if rs = rs[k:]; len(rs) == 0 {
			return true
		}
		// addRun stopped before rs[0]: it would overflow the part, or
		// the clock is due.
		ask := a.n == a.askAt
		if ask {
			a.askAt += clockEvery
		}
		if a.full(&rs[0]) || ask && due() {
			if !send(false) {
				return false
			}
		}
	}
}

// clockEvery is how many items a worker adds to an answer between reads
// of the clock (to send a long batch's answer in parts): a read per item
// measured 10% of the worker's CPU on 1M trivial items.
const clockEvery = 1024

// addRun appends a prefix of rs, the next items, and returns its length:
// every item up to the first that would overflow the part, or up to the
// part's askAt-th item, whichever comes first. Plain values, the common
// case, are copied in a loop of their own rather than through add.
func (a *answerBuilder) addRun(rs []backend.Result) int {
	stop := min(len(rs), a.askAt-a.n)
	room := a.room()
	for k := range stop {
		r := &rs[k]
		size := len(r.Value) + perItemOverhead
		if r.Err != nil || r.Output != nil || size > room {
			if a.full(r) {
				return k
			}
			a.add(*r)
			continue
		}
		if a.n > 0 && a.size+size > room {
			return k
		}
		a.data = append(a.data, r.Value...)
		a.ends = append(a.ends, uint32(len(a.data)))
		a.size += size
		a.n++
	}
	return stop
}

// cut returns the part built so far as a message (valid until the next
// cut) and starts the next part; last marks the delivery's last part and
// busy is then the batch's time on its slot.
func (a *answerBuilder) cut(last bool, busy time.Duration) []byte {
	b := a.msg[:0]
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, a.seq)
	if a.first > 0 {
		b = protowire.AppendTag(b, 2, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(a.first))
	}
	if len(a.data) > 0 {
		b = protowire.AppendTag(b, 3, protowire.BytesType)
		b = protowire.AppendBytes(b, a.data)
	}
	if len(a.ends) > 0 {
		n := 0
		for _, e := range a.ends {
			n += protowire.SizeVarint(uint64(e))
		}
		b = protowire.AppendTag(b, 4, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(n))
		for _, e := range a.ends {
			b = protowire.AppendVarint(b, uint64(e))
		}
	}
	for _, f := range a.failures {
		b = protowire.AppendTag(b, 5, protowire.BytesType)
		b = protowire.AppendBytes(b, f)
	}
	for _, o := range a.output {
		b = protowire.AppendTag(b, 6, protowire.BytesType)
		b = protowire.AppendBytes(b, o)
	}
	b = protowire.AppendTag(b, 7, protowire.BytesType)
	b = protowire.AppendString(b, a.worker)
	b = protowire.AppendTag(b, 8, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(a.delivery))
	if last {
		b = protowire.AppendTag(b, 9, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(busy))
		b = protowire.AppendTag(b, 10, protowire.VarintType)
		b = protowire.AppendVarint(b, 1)
		if a.itemNs > 0 {
			b = protowire.AppendTag(b, 11, protowire.VarintType)
			b = protowire.AppendVarint(b, a.itemNs)
		}
	}
	a.msg = b
	a.first += a.n
	a.n, a.size, a.askAt = 0, 0, clockEvery-1
	a.data, a.ends = a.data[:0], a.ends[:0]
	a.failures, a.output = a.failures[:0], a.output[:0]
	return b
}

// itemSize estimates the bytes result r takes in an Answer.
func itemSize(r *backend.Result) int {
	n := len(r.Value) + perItemOverhead
	if r.Err == nil && r.Output == nil {
		return n
	}
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
		te *backend.TaskError
		ce *pool.CrashError
		to *pool.TimeoutError
		tl *backend.TooLargeError
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
	case errors.Is(err, backend.ErrDegraded):
		f.Kind = clusterpb.Kind_KIND_DEGRADED
	case errors.Is(err, backend.ErrClosed):
		f.Kind = clusterpb.Kind_KIND_CLOSED
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		f.Kind = clusterpb.Kind_KIND_CANCELED
		f.Message = f.Text
	}
	return f
}

var taskKinds = map[backend.TaskErrorKind]clusterpb.Kind{
	backend.KindError:    clusterpb.Kind_KIND_TASK,
	backend.KindPanic:    clusterpb.Kind_KIND_PANIC,
	backend.KindDecode:   clusterpb.Kind_KIND_DECODE,
	backend.KindCanceled: clusterpb.Kind_KIND_CANCELED,
}

// errorOf rebuilds the error a worker described. Task errors come back as
// *backend.TaskError; the others are wrapped in a *RemoteError naming the
// worker.
func errorOf(f *clusterpb.Failure, worker string) error {
	remote := func(err error) error { return &RemoteError{Worker: worker, Err: err} }
	switch f.Kind {
	case clusterpb.Kind_KIND_TASK, clusterpb.Kind_KIND_PANIC, clusterpb.Kind_KIND_DECODE, clusterpb.Kind_KIND_CANCELED:
		kind := backend.KindError
		for k, v := range taskKinds {
			if v == f.Kind {
				kind = k
			}
		}
		return &backend.TaskError{Plugin: f.Plugin, Kind: kind, Message: string(f.Message), Attempt: int(f.Attempts)}
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
		return &backend.TooLargeError{Size: int(f.Size), Limit: int(f.Limit)}
	case clusterpb.Kind_KIND_LOST:
		return &LostError{Plugin: f.Plugin, Deliveries: int(f.Deliveries), Reason: string(f.Message)}
	case clusterpb.Kind_KIND_DEGRADED:
		return remote(&textError{text: string(f.Text), is: backend.ErrDegraded})
	case clusterpb.Kind_KIND_CLOSED:
		return remote(&textError{text: string(f.Text), is: backend.ErrClosed})
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

// It parses by hand so that the values alias data (a message nats.go made
// for this subscription) instead of being copied: the generated Unmarshal
// copies every bytes field.
func decodeAnswer(data []byte) (*answer, error) {
	a := &answer{Answer: &clusterpb.Answer{}}
	bad := func(what string) (*answer, error) { return nil, fmt.Errorf("undecodable answer: %s", what) }
	for len(data) > 0 {
		num, typ, n := protowire.ConsumeTag(data)
		if n < 0 {
			return bad("bad tag")
		}
		data = data[n:]
		var v uint64
		var b []byte
		switch typ {
		case protowire.VarintType:
			v, n = protowire.ConsumeVarint(data)
		case protowire.BytesType:
			b, n = protowire.ConsumeBytes(data)
		default:
			n = protowire.ConsumeFieldValue(num, typ, data)
		}
		if n < 0 {
			return bad(fmt.Sprintf("field %d", num))
		}
		data = data[n:]
		switch {
		case num == 1 && typ == protowire.VarintType:
			a.Seq = v
		case num == 2 && typ == protowire.VarintType:
			a.First = uint32(v)
		case num == 3 && typ == protowire.BytesType:
			a.Data = b
		case num == 4 && typ == protowire.BytesType:
			a.Ends = slices.Grow(a.Ends, varints(b))
			for len(b) > 0 {
				e, k := protowire.ConsumeVarint(b)
				if k < 0 || e > 1<<32-1 {
					return bad("bad item end")
				}
				a.Ends = append(a.Ends, uint32(e))
				b = b[k:]
			}
		case num == 5 && typ == protowire.BytesType:
			f := &clusterpb.Failure{}
			if err := proto.Unmarshal(b, f); err != nil {
				return bad(err.Error())
			}
			a.Failures = append(a.Failures, f)
		case num == 6 && typ == protowire.BytesType:
			o := &clusterpb.Printed{}
			if err := proto.Unmarshal(b, o); err != nil {
				return bad(err.Error())
			}
			a.Output = append(a.Output, o)
		case num == 7 && typ == protowire.BytesType:
			a.Worker = string(b)
		case num == 8 && typ == protowire.VarintType:
			a.Delivery = uint32(v)
		case num == 9 && typ == protowire.VarintType:
			a.BusyNs = v
		case num == 10 && typ == protowire.VarintType:
			a.Last = v != 0
		case num == 11 && typ == protowire.VarintType:
			a.ItemNs = v
		}
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
func (a *answer) result(i int) backend.Result {
	var r backend.Result
	if a.printed != nil { // most answers print nothing and fail nothing
		r.Output = a.printed[uint32(i)]
	}
	if a.failed != nil {
		if f := a.failed[uint32(i)]; f != nil {
			r.Err = errorOf(f, a.Worker)
			return r
		}
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

// varints counts the varints in packed: their last bytes are below 0x80.
func varints(packed []byte) int {
	n := 0
	for _, c := range packed {
		if c < 0x80 {
			n++
		}
	}
	return n
}

// appendTask appends the Task for batch seq of items (data cut at ends),
// starting at job-wide index first, to buf: by hand, into a buffer the
// publisher reuses, rather than a fresh copy per batch.
func appendTask(buf []byte, seq uint64, first int, data []byte, ends []uint32) []byte {
	buf = slices.Grow(buf, len(data)+5*len(ends)+32)
	buf = protowire.AppendTag(buf, 1, protowire.VarintType)
	buf = protowire.AppendVarint(buf, seq)
	buf = protowire.AppendTag(buf, 2, protowire.VarintType)
	buf = protowire.AppendVarint(buf, uint64(first))
	buf = protowire.AppendTag(buf, 3, protowire.BytesType)
	buf = protowire.AppendBytes(buf, data)
	n := 0
	for _, e := range ends {
		n += protowire.SizeVarint(uint64(e))
	}
	buf = protowire.AppendTag(buf, 4, protowire.BytesType)
	buf = protowire.AppendVarint(buf, uint64(n))
	for _, e := range ends {
		buf = protowire.AppendVarint(buf, uint64(e))
	}
	return buf
}

// decodeTask parses a Task without copying its items: they alias data.
func decodeTask(data []byte) (*clusterpb.Task, error) {
	t := &clusterpb.Task{}
	for len(data) > 0 {
		num, typ, n := protowire.ConsumeTag(data)
		if n < 0 {
			return nil, errors.New("undecodable batch: bad tag")
		}
		data = data[n:]
		switch {
		case num == 1 && typ == protowire.VarintType:
			t.Seq, n = protowire.ConsumeVarint(data)
		case num == 2 && typ == protowire.VarintType:
			t.First, n = protowire.ConsumeVarint(data)
		case num == 3 && typ == protowire.BytesType:
			t.Data, n = protowire.ConsumeBytes(data)
		case num == 4 && typ == protowire.BytesType:
			var packed []byte
			packed, n = protowire.ConsumeBytes(data)
			t.Ends = slices.Grow(t.Ends, varints(packed))
			for len(packed) > 0 && n >= 0 {
				v, k := protowire.ConsumeVarint(packed)
				if k < 0 || v > 1<<32-1 {
					return nil, errors.New("undecodable batch: bad item end")
				}
				t.Ends = append(t.Ends, uint32(v))
				packed = packed[k:]
			}
		default:
			n = protowire.ConsumeFieldValue(num, typ, data)
		}
		if n < 0 {
			return nil, fmt.Errorf("undecodable batch: field %d", num)
		}
		data = data[n:]
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

// items yields a task's items (slices of its data, no copy).
func items(t *clusterpb.Task) iter.Seq[[]byte] {
	return func(yield func([]byte) bool) {
		lo := uint32(0)
		for _, hi := range t.Ends {
			if !yield(t.Data[lo:hi:hi]) {
				return
			}
			lo = hi
		}
	}
}
