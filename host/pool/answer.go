package pool

import (
	"fmt"

	workerpb "github.com/pluginpool/pluginpool/sdk/proto"
)

// checkAnswer validates a plugin's answer against the wire contract
// (worker.proto) on its own: its item boundaries run forwards within its
// data, and its errors and printed lines name items of this answer, in
// order. (Whether it answers the items next in line, deliver checks under
// the pool's lock.) An answer that breaks it fails with errProtocol and
// ends the worker, as a crash does; nothing of it is delivered. Its bytes
// come from the plugin: without this, boundaries running backwards made
// the host panic slicing them (only the last one was checked), and an
// error listed out of order was skipped, its item delivered as a success
// with no value.
func checkAnswer(resp *workerpb.Batch) error {
	first, n := int64(resp.First), int64(len(resp.Ends))
	prev := uint32(0)
	for i, end := range resp.Ends {
		if end < prev || int(end) > len(resp.Data) {
			return fmt.Errorf("%w: answer for batch %d: item %d ends at %d, after %d (data is %d bytes)", errProtocol, resp.Seq, first+int64(i), end, prev, len(resp.Data))
		}
		prev = end
	}
	next := first // the lowest index the next entry may name
	for _, e := range resp.Errors {
		if int64(e.Index) < next || int64(e.Index) >= first+n {
			return fmt.Errorf("%w: answer for batch %d (items %d..%d): an error for item %d, out of order or range", errProtocol, resp.Seq, first, first+n, e.Index)
		}
		next = int64(e.Index) + 1
	}
	next = first
	for _, o := range resp.Output {
		if int64(o.Index) < next || int64(o.Index) >= first+n {
			return fmt.Errorf("%w: answer for batch %d (items %d..%d): printed lines for item %d, out of order or range", errProtocol, resp.Seq, first, first+n, o.Index)
		}
		next = int64(o.Index) + 1
	}
	return nil
}
