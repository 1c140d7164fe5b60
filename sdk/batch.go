package sdk

import (
	"fmt"

	workerpb "github.com/pluginpool/pluginpool/sdk/proto"
)

// checkRequest validates a request batch before any of its items runs.
// A batch no host should send (item boundaries out of order or past the
// data, ids that do not match the items) ends the stream: running part of
// it, or giving items the wrong ids, would answer for items the host never
// sent.
func checkRequest(b *workerpb.Batch) error {
	prev := uint32(0)
	for i, end := range b.Ends {
		if end < prev || int(end) > len(b.Data) {
			return fmt.Errorf("malformed batch %d: item %d ends at %d, after %d (data is %d bytes)", b.Seq, i, end, prev, len(b.Data))
		}
		prev = end
	}
	if len(b.Ids) != 0 && len(b.Ids) != len(b.Ends) {
		return fmt.Errorf("malformed batch %d: %d ids for %d items", b.Seq, len(b.Ids), len(b.Ends))
	}
	return nil
}
