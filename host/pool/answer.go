package pool

import (
	"fmt"

	workerpb "github.com/pluginpool/pluginpool/sdk/proto"
)

// checkAnswer validates a plugin's answer to a batch of size items, done
// of which were answered before, against the wire contract (worker.proto):
// it answers the next consecutive items, its item boundaries run forwards
// within its data, and its errors and printed lines name items of this
// answer, in order. An answer that breaks it fails with errProtocol and
// ends the worker, as a crash does; nothing of it is delivered. Its bytes
// come from the plugin: without this, boundaries running backwards made
// the host panic slicing them, and an error listed out of order was
// skipped, its item delivered as a success with no value.
func checkAnswer(resp *workerpb.Batch, done, size int) error {
	n := len(resp.Ends)
	if int(resp.First) != done || n > size-done {
		return fmt.Errorf("%w: answer for items %d..%d of batch %d, which has %d of %d answered", errProtocol, resp.First, int(resp.First)+n, resp.Seq, done, size)
	}
	prev := uint32(0)
	for i, end := range resp.Ends {
		if end < prev || int(end) > len(resp.Data) {
			return fmt.Errorf("%w: answer for batch %d: item %d ends at %d, after %d (data is %d bytes)", errProtocol, resp.Seq, done+i, end, prev, len(resp.Data))
		}
		prev = end
	}
	next := int64(done) // the lowest index the next entry may name
	for _, e := range resp.Errors {
		if int64(e.Index) < next || int(e.Index) >= done+n {
			return fmt.Errorf("%w: answer for batch %d (items %d..%d): an error for item %d, out of order or range", errProtocol, resp.Seq, done, done+n, e.Index)
		}
		next = int64(e.Index) + 1
	}
	next = int64(done)
	for _, o := range resp.Output {
		if int64(o.Index) < next || int(o.Index) >= done+n {
			return fmt.Errorf("%w: answer for batch %d (items %d..%d): printed lines for item %d, out of order or range", errProtocol, resp.Seq, done, done+n, o.Index)
		}
		next = int64(o.Index) + 1
	}
	return nil
}
