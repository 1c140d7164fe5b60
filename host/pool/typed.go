package pool

import (
	"cmp"
	"context"
	"errors"
	"io"
	"iter"
	"os"
	"reflect"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/pluginpool/pluginpool/host/backend"
	"github.com/pluginpool/pluginpool/internal/codec"
)

// Typed returns a typed caller of ex: it encodes each In as JSON, runs it
// through ex, and decodes each result into an Out, so that a Go program
// calls a plugin written with sdk.Func(func(ctx, In) (Out, error)) with
// the same types on both sides:
//
//	double := pool.Typed[int, int](p)
//	ys, err := double.Map(ctx, []int{1, 2, 3}) // [2 4 6]
//
// It uses the SDK's codec: int, int64, float64, string, bool, json.Number
// and json.RawMessage skip encoding/json's reflection, types implementing
// json.Unmarshaler (results) or an AppendJSON method like
// sdk.JSONAppender (items) are called directly, and every other type goes
// through encoding/json. WithCodec replaces it.
//
// ex is any Executor: a local *Pool or a cluster. The caller adds no
// goroutines or state of its own to ex's; it is safe for concurrent use,
// and calls keep ex's ordering and error semantics: one result per item,
// errors that match the pool's sentinels with errors.Is, plus ErrCodec
// for a value that does not encode or decode.
func Typed[In, Out any](ex Executor) *Caller[In, Out] {
	return &Caller[In, Out]{ex: ex, output: os.Stdout}
}

// Caller is a typed view of an Executor; see Typed. Its methods mirror
// Executor's: Map, Apply, Imap, ImapUnordered.
type Caller[In, Out any] struct {
	ex     Executor
	output io.Writer
	encode func(buf []byte, v *In) ([]byte, error) // nil: JSON (codec.Encoder)
	decode func(data []byte, v *Out) error         // nil: JSON (codec.Decoder)
}

// encoder returns the function that encodes *v: the caller's, or the JSON
// codec's bound to v, which picks v's path once rather than per item.
func (c *Caller[In, Out]) encoder(v *In) func(buf []byte) ([]byte, error) {
	if enc := c.encode; enc != nil {
		return func(buf []byte) ([]byte, error) { return enc(buf, v) }
	}
	return codec.Encoder(v)
}

// decoder returns the function that decodes into *v (see encoder).
func (c *Caller[In, Out]) decoder(v *Out) func(data []byte) error {
	if dec := c.decode; dec != nil {
		return func(data []byte) error { return dec(data, v) }
	}
	return codec.Decoder(v)
}

// TypedResult is the outcome of one item of a typed Imap.
type TypedResult[T any] struct {
	// Value is the decoded result; the zero T when the item failed or the
	// task returned no value (sdk.Sink).
	Value T
	// Output holds the lines the task printed through the SDK, in order.
	Output []string
	// Err says why the item failed, or is nil: as Result.Err, or a
	// *CodecError (ErrCodec).
	Err error
}

// WithOutput returns a copy of c that writes the lines tasks print
// (sdk.Printf) during Map and Apply to w, each line whole with its
// newline, in input order; nil discards them. The default is os.Stdout,
// where Python's Pool.map lets its workers print. Write errors are
// ignored: the lines are a side channel, the results are the answer.
// Imap and ImapUnordered never write: they yield each item's lines in
// TypedResult.Output.
func (c *Caller[In, Out]) WithOutput(w io.Writer) *Caller[In, Out] {
	d := *c
	d.output = w
	if w == nil {
		d.output = io.Discard
	}
	return &d
}

// WithCodec returns a copy of c that encodes items with encode (which
// appends v's encoding to buf and returns the extended buffer) and decodes
// results with decode (which sets *v, a zero Out, from data). A nil
// function keeps c's. An error from either fails that item alone with a
// *CodecError, as the JSON codec's do.
//
// The plugin must speak the same encoding (sdk.Raw takes any bytes), but
// the pool accepts only results that are one line of JSON each (any other
// value fails its item with ErrTask, before decode sees it): use it for
// another JSON shape of a type (an array for a struct, say) or a faster
// hand-written JSON codec; carry binary data in JSON strings (base64).
func (c *Caller[In, Out]) WithCodec(encode func(buf []byte, v *In) ([]byte, error), decode func(data []byte, v *Out) error) *Caller[In, Out] {
	d := *c
	if encode != nil {
		d.encode = encode
	}
	if decode != nil {
		d.decode = decode
	}
	return &d
}

// Map runs every item and returns their values in input order, like
// Python's Pool.map. It blocks until all are done or ctx is cancelled;
// cancelling fails the unfinished items with ctx's error and cancels their
// tasks.
//
// The error is nil when every item succeeded. Otherwise it is an
// *ItemsError that lists every failed item with its error, and whose
// message is Map's (how many failed, the first of them); a failed item's
// value is the zero Out, and the other values are all there. An item that
// does not encode is not run and fails with a *CodecError.
//
// Items are encoded one at a time as the pool takes them, and results are
// decoded straight into the returned slice: besides that slice, Map holds
// a bounded number of batches in memory, however many items there are.
func (c *Caller[In, Out]) Map(ctx context.Context, items []In) ([]Out, error) {
	out := make([]Out, len(items))
	if len(items) == 0 {
		return out, nil
	}
	t := backend.Tally{Items: len(items)}
	// Results decode into v and are copied into out: a decoder bound to
	// one variable picks its path once.
	v := new(Out)
	decode := c.decoder(v)
	var (
		failed  []ItemError
		lines   []byte
		next    int   // results come in input order: the next one's index
		lastErr error // the last failure: the executor's stop error, if it stopped
	)
	// values decodes a run of plain values straight into out.
	values := func(i0 int, data []byte, ends []uint32) bool {
		o := out[i0 : i0+len(ends)]
		for from := 0; from < len(ends); {
			k, derr := c.decodeRun(o, data, ends, from, v, decode)
			if k == len(ends) {
				break
			}
			start := uint32(0)
			if k > 0 {
				start = ends[k-1]
			}
			err := c.decodeError(data[start:ends[k]], derr)
			t.Add(i0+k, err)
			failed = append(failed, ItemError{Index: i0 + k, Err: err})
			lastErr = err
			from = k + 1
		}
		next = i0 + len(ends)
		return true
	}
	c.each(ctx, nil, items, true, values, func(i0 int, rs []Result) bool {
		for k := range rs {
			i, r := i0+k, &rs[k]
			if len(r.Output) > 0 {
				lines = c.print(lines, r.Output)
			}
			err := r.Err
			if err == nil && r.Value != nil {
				var zero Out
				*v = zero
				if derr := decode(r.Value); derr != nil {
					err = c.decodeError(r.Value, derr)
				} else {
					out[i] = *v
				}
			}
			if err != nil {
				t.Add(i, err)
				failed = append(failed, ItemError{Index: i, Err: err})
				lastErr = err
			}
		}
		next = i0 + len(rs)
		return true
	})
	if next < len(items) {
		// The executor stopped reading items (the call was cancelled, the
		// pool degraded or closed): the rest share the error the last
		// item read got, as Executor.Map's unfinished items do.
		err := cmp.Or(lastErr, ctx.Err(), ErrClosed)
		for i := next; i < len(items); i++ {
			t.Add(i, err)
			failed = append(failed, ItemError{Index: i, Err: err})
		}
	}
	if failed == nil {
		return out, nil
	}
	return out, &ItemsError{Items: len(items), Failed: failed, msg: t.Err()}
}

// Apply runs one item and returns its value, like Python's Pool.apply.
// The error is the item's: as Executor.Apply's, or a *CodecError.
func (c *Caller[In, Out]) Apply(ctx context.Context, item In) (Out, error) {
	var zero Out
	b, err := c.encoder(&item)(nil)
	if err != nil {
		return zero, c.encodeError(err)
	}
	r, err := c.ex.Apply(ctx, b)
	if len(r.Output) > 0 {
		c.print(nil, r.Output)
	}
	if err != nil {
		return zero, err
	}
	v := new(Out)
	tr := c.typed(r, v, c.decoder(v))
	return tr.Value, tr.Err
}

// Imap runs items as they come and yields each result with its input
// index, in input order, as Executor.Imap does: lazily, in bounded memory,
// one result for every item read, a failed item yielding its error while
// iteration goes on. Use slices.Values to run a slice.
func (c *Caller[In, Out]) Imap(ctx context.Context, items iter.Seq[In]) iter.Seq2[int, TypedResult[Out]] {
	return c.imap(ctx, items, true)
}

// ImapUnordered is Imap yielding results as they complete rather than in
// input order; the index says which item each belongs to.
func (c *Caller[In, Out]) ImapUnordered(ctx context.Context, items iter.Seq[In]) iter.Seq2[int, TypedResult[Out]] {
	return c.imap(ctx, items, false)
}

func (c *Caller[In, Out]) imap(ctx context.Context, items iter.Seq[In], ordered bool) iter.Seq2[int, TypedResult[Out]] {
	return func(yield func(int, TypedResult[Out]) bool) {
		v := new(Out) // one decode target: a local would escape through the decoder
		decode := c.decoder(v)
		c.each(ctx, items, nil, ordered, nil, func(i0 int, rs []Result) bool {
			for k := range rs {
				if !yield(i0+k, c.typed(rs[k], v, decode)) {
					return false
				}
			}
			return true
		})
	}
}

// typed decodes r into a TypedResult, through v, which decode decodes
// into.
func (c *Caller[In, Out]) typed(r Result, v *Out, decode func([]byte) error) TypedResult[Out] {
	tr := TypedResult[Out]{Output: r.Output, Err: r.Err}
	if r.Err != nil || r.Value == nil {
		return tr
	}
	var zero Out
	*v = zero
	if err := decode(r.Value); err != nil {
		tr.Err = c.decodeError(r.Value, err)
		return tr
	}
	tr.Value = *v
	return tr
}

// skipped is an item that did not encode, and so was not sent.
type skipped struct {
	index int // its index in the caller's input
	pos   int // the index the executor gave the next item sent after it
	err   error
}

// each runs items (or list, when it is not nil) through the executor, in
// input order or as completed, and calls fn with runs of results: the
// index in items of the first and their results, consecutive in items,
// until fn returns false. fn must not keep rs. If values is set, runs of
// plain values may go to it instead, as the plugin sent them (see sink).
// An item that does not encode is not sent; fn gets its *CodecError where
// it belongs (in order, or at once).
//
// The executor numbers only the items it was sent, so each maps its
// indices back past the skipped items. They are rare: the common case
// costs one atomic load per run. A local pool hands over whole answered
// batches (imapBatches); any other executor's results come one by one.
func (c *Caller[In, Out]) each(ctx context.Context, items iter.Seq[In], list []In, ordered bool, values func(int, []byte, []uint32) bool, fn func(int, []Result) bool) {
	var (
		mu    sync.Mutex
		skips []skipped // appended by the executor's reader of encoded, in order
		count atomic.Int64
	)
	encoded := func(yield func([]byte) bool) {
		var buf []byte
		v := new(In) // one encode target: a local would escape through the encoder
		encode := c.encoder(v)
		i, sent := 0, 0
		// put encodes *v and yields it, or records it as skipped. It
		// reports false when the executor wants no more.
		put := func() bool {
			b, err := encode(buf[:0])
			if err != nil {
				mu.Lock()
				skips = append(skips, skipped{index: i, pos: sent, err: c.encodeError(err)})
				mu.Unlock()
				count.Add(1)
				i++
				return true
			}
			buf = b // the executor copies each item before asking for the next
			i++
			sent++
			return yield(b)
		}
		for x := range items {
			if *v = x; !put() {
				return
			}
		}
	}
	src := source{items: encoded}
	if list != nil {
		// Map's slice: encoded a run at a time, straight into the batch.
		sent := 0
		src = source{n: len(list), fill: func(from int, data []byte, ends []uint32) (int, []byte, bool) {
			k, data, err := c.encodeRun(data, ends, list[from:])
			sent += k
			if err == nil {
				return k, data, false
			}
			mu.Lock()
			skips = append(skips, skipped{index: from + k, pos: sent, err: c.encodeError(err)})
			mu.Unlock()
			count.Add(1)
			return k, data, true
		}}
	}
	done := 0 // skips delivered
	// deliver hands fn the skips not delivered yet whose pos is at most
	// upTo (all of them when upTo < 0). It reports false when fn did.
	deliver := func(upTo int) bool {
		mu.Lock()
		pending := skips[done:]
		mu.Unlock()
		for _, s := range pending {
			if upTo >= 0 && s.pos > upTo {
				break
			}
			done++
			if !fn(s.index, []Result{{Err: s.err}}) {
				return false
			}
		}
		return true
	}
	one := make([]Result, 1) // a single result handed to fn
	// each1 hands fn the result of the k-th item sent, past the skips.
	each1 := func(k int, r Result) bool {
		i := k
		if n := int(count.Load()); n > 0 {
			if ordered {
				// Skips come before the item sent after them.
				if n > done && !deliver(k) {
					return false
				}
				i = k + done
			} else {
				if n > done && !deliver(-1) {
					return false
				}
				mu.Lock()
				i = k + sort.Search(len(skips), func(j int) bool { return skips[j].pos > k })
				mu.Unlock()
			}
		}
		one[0] = r
		return fn(i, one)
	}
	if bp, ok := c.ex.(*Pool); ok {
		stopped := false
		s := sink{results: func(k0 int, rs []Result) bool {
			if count.Load() == 0 {
				// No skips so far, and none among these: every item
				// up to k0+len(rs) was sent before it was answered.
				stopped = !fn(k0, rs)
				return !stopped
			}
			for k := range rs {
				if !each1(k0+k, rs[k]) {
					stopped = true
					return false
				}
			}
			return true
		}}
		if values != nil {
			s.values = func(k0 int, data []byte, ends []uint32) bool {
				if count.Load() == 0 {
					stopped = !values(k0, data, ends)
					return !stopped
				}
				prev := uint32(0)
				for k, end := range ends {
					r := Result{}
					if end > prev {
						r.Value = data[prev:end:end]
					}
					prev = end
					if !each1(k0+k, r) {
						stopped = true
						return false
					}
				}
				return true
			}
		}
		bp.imapBatches(ctx, src, ordered, s)
		if stopped {
			return
		}
	} else {
		run := c.ex.Imap
		if !ordered {
			run = c.ex.ImapUnordered
		}
		for k, r := range run(ctx, src.all()) {
			if !each1(k, r) {
				return
			}
		}
	}
	// The executor is done reading: every skip is recorded.
	deliver(-1)
}

// encodeRun appends the encodings of items to data while they fit, as
// codec.EncodeRun does; with WithCodec's encode, through it.
func (c *Caller[In, Out]) encodeRun(data []byte, ends []uint32, items []In) (int, []byte, error) {
	if c.encode == nil {
		return codec.EncodeRun(data, ends, items)
	}
	v := new(In) // the encoder's, not the caller's item
	return codec.EncodeRunFunc(data, ends, items, v, c.encoder(v))
}

// decodeRun decodes the values of a run into out, from value from on, as
// codec.DecodeRun does; with WithCodec's decode, through decode, which
// decodes into v.
func (c *Caller[In, Out]) decodeRun(out []Out, data []byte, ends []uint32, from int, v *Out, decode func([]byte) error) (int, error) {
	if c.decode == nil {
		return codec.DecodeRun(out, data, ends, from)
	}
	return codec.DecodeRunFunc(out, data, ends, from, v, decode)
}

// print writes lines to c.output, each whole with its newline, through buf.
func (c *Caller[In, Out]) print(buf []byte, lines []string) []byte {
	for _, l := range lines {
		buf = append(append(buf[:0], l...), '\n')
		_, _ = c.output.Write(buf)
	}
	return buf
}

func (c *Caller[In, Out]) encodeError(err error) error {
	return &CodecError{Type: reflect.TypeFor[In]().String(), Err: err}
}

func (c *Caller[In, Out]) decodeError(value []byte, err error) error {
	ce := &CodecError{Result: true, Type: reflect.TypeFor[Out]().String(), Err: err}
	if de, ok := errors.AsType[*codec.DecodeError](err); ok {
		// The codec's error quotes the value itself: keep only its reason.
		ce.Type, ce.Err = de.Type, de.Err
	}
	ce.Value, ce.Size = quoteStart(value), len(value)
	return ce
}

// quoteStart copies the start of a value for an error message: as much
// as a message quotes of an item.
func quoteStart(b []byte) []byte {
	return append([]byte(nil), b[:min(len(b), 64)]...)
}
