package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
)

// jobRecord is a job's entry in the jobs bucket, written by its host. It is
// JSON, so `nats kv get pluginpool_jobs ID` shows it.
type jobRecord struct {
	ID      string `json:"id"`
	Plugin  string `json:"plugin"`
	SHA256  string `json:"sha256,omitempty"`  // pinned executable digest
	Version string `json:"version,omitempty"` // pinned version
	Host    string `json:"host"`              // the host machine, for logs
	Pid     int    `json:"pid"`
	// AckWait is the consumer's; workers send InProgress every third of it.
	AckWait time.Duration `json:"ack_wait"`
	// HostTimeout is how long the record may go without a refresh before
	// workers treat the host as gone.
	HostTimeout time.Duration `json:"host_timeout"`
	// MaxAttempts bounds the deliveries of an idempotent plugin's batch.
	MaxAttempts int `json:"max_attempts"`
	// Beat counts the host's refreshes (so each put differs).
	Beat uint64 `json:"beat"`
}

// PluginInfo is one plugin a worker serves, as its slots run it. During
// a rolling reload the slots may differ: each build is listed.
type PluginInfo struct {
	Name       string    `json:"name"`
	Idempotent bool      `json:"idempotent"`
	Variants   []Variant `json:"variants"`
	// Capacity is how many batches the worker runs at once for this
	// plugin (slots × in-flight), Running how many it runs now.
	Capacity int `json:"capacity"`
	Running  int `json:"running"`
	// Items and Batches count what the worker answered for this plugin.
	Items   int64 `json:"items"`
	Batches int64 `json:"batches"`
	// ItemNs is a recent task's time on a slot (the slowest slot's median,
	// queueing excluded), in nanoseconds; 0 before the first batch. A
	// host's first batches are sized from it rather than grown from one
	// item.
	ItemNs int64 `json:"item_ns,omitempty"`
}

// Variant is one build of a plugin and the number of slots running it.
type Variant struct {
	Version string `json:"version"`
	SHA256  string `json:"sha256"`
	Slots   int    `json:"slots"`
}

// WorkerInfo is a live worker as it describes itself in the registry
// (the pluginpool_workers bucket, JSON), refreshed every 2s.
type WorkerInfo struct {
	ID       string       `json:"id"`
	Host     string       `json:"host"`
	Pid      int          `json:"pid"`
	Cores    int          `json:"cores"`
	Started  time.Time    `json:"started"`
	Draining bool         `json:"draining,omitempty"`
	Jobs     int          `json:"jobs"` // jobs it is serving now
	Plugins  []PluginInfo `json:"plugins"`
}

// Plugin returns what the worker says of the plugin called name, or nil.
func (w *WorkerInfo) Plugin(name string) *PluginInfo {
	for i := range w.Plugins {
		if w.Plugins[i].Name == name {
			return &w.Plugins[i]
		}
	}
	return nil
}

// accepts says why a build of a plugin does not match the job's pins, or
// "" if it does.
func (j *jobRecord) accepts(v Variant) string {
	var why []string
	if j.SHA256 != "" && v.SHA256 != j.SHA256 {
		why = append(why, fmt.Sprintf("its executable has sha256 %s, the host pins %s", short(v.SHA256), short(j.SHA256)))
	}
	if j.Version != "" && v.Version != j.Version {
		why = append(why, fmt.Sprintf("it reports version %q, the host pins %q", v.Version, j.Version))
	}
	return strings.Join(why, "; ")
}

// refusal says why worker w serves none of the job's batches, or "" if
// it serves them (or does not run the plugin at all, which is no refusal).
func (j *jobRecord) refusal(w *WorkerInfo) string {
	pr := w.Plugin(j.Plugin)
	if pr == nil {
		return ""
	}
	var why []string
	for _, v := range pr.Variants {
		r := j.accepts(v)
		if r == "" {
			return ""
		}
		why = append(why, r)
	}
	if len(why) == 0 {
		return "the plugin has no running slot there"
	}
	return strings.Join(why, "; ")
}

// short abbreviates a digest for messages.
func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12] + "…"
	}
	return sha
}

func hostname() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "unknown"
	}
	return h
}

// ListWorkers connects to the cluster and returns its live workers, by id.
// Workers that stopped without leaving (killed) drop out within 10s.
func ListWorkers(ctx context.Context, n NATS) ([]WorkerInfo, error) {
	n, errs := n.withDefaults()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	l, err := dial(ctx, n, "pluginpool workers", hclog.NewNullLogger())
	if err != nil {
		return nil, err
	}
	defer l.close()
	lister, err := l.workers.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	var out []WorkerInfo
	for key := range lister.Keys() {
		ent, err := l.workers.Get(ctx, key)
		if err != nil {
			continue // gone meanwhile
		}
		var w WorkerInfo
		if json.Unmarshal(ent.Value(), &w) == nil {
			out = append(out, w)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}
