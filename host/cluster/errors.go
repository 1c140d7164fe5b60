package cluster

import (
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/pluginpool/pluginpool/host/backend"
)

// Sentinel errors. Items of a job fail with the sentinels every back-end
// shares (backend.ErrTask, ErrCrashed, ErrTimeout, ErrTooLarge,
// ErrDegraded, ErrClosed) as they would locally; these add what only a
// cluster has.
var (
	// ErrInvalidConfig: a Config, WorkerConfig or ServerConfig field is out
	// of range. Fix the field named in the message.
	ErrInvalidConfig = errors.New("invalid cluster config")
	// ErrConnect: the NATS server could not be reached, or refused the
	// login. A *ConnectError says which and what to do.
	ErrConnect = errors.New("cannot connect to the cluster")
	// ErrNoWorkers: no live worker serves the plugin (as pinned) within
	// StartTimeout. A *NoWorkersError lists the workers refused and why. It
	// also matches backend.ErrStart: to a caller it is a plugin that did not
	// start.
	ErrNoWorkers = errors.New("no worker serves the plugin")
	// ErrLost: the items' batch was lost with the worker or the job that
	// held it and could not be run again. A *LostError says why. It also
	// matches backend.ErrCrashed.
	ErrLost = errors.New("batch lost")
)

// ConnectError reports a NATS connection that could not be made.
type ConnectError struct {
	URL string
	Err error
}

func (e *ConnectError) Error() string {
	hint := ""
	switch {
	case errors.Is(e.Err, nats.ErrAuthorization), errors.Is(e.Err, nats.ErrAuthExpired), errors.Is(e.Err, nats.ErrAuthRevoked),
		strings.Contains(strings.ToLower(e.Err.Error()), "authorization"):
		hint = "; the server refused the login: set PLUGINPOOL_TOKEN to the token `pluginpool server` printed (or [cluster] credentials for a NATS credentials file)"
	case errors.Is(e.Err, nats.ErrNoServers):
		hint = "; is `pluginpool server` (or nats-server with JetStream) running there?"
	}
	return fmt.Sprintf("cannot connect to %s: %v%s", redact(e.URL), e.Err, hint)
}

func (e *ConnectError) Unwrap() error { return e.Err }

func (e *ConnectError) Is(target error) bool { return target == ErrConnect }

// redact hides a token or password in a URL.
func redact(url string) string {
	parts := strings.Split(url, ",")
	for i, u := range parts {
		scheme, rest, ok := strings.Cut(u, "://")
		if !ok {
			continue
		}
		if at := strings.LastIndexByte(rest, '@'); at >= 0 {
			parts[i] = scheme + "://REDACTED@" + rest[at+1:]
		}
	}
	return strings.Join(parts, ",")
}

// Refusal is a live worker that runs the plugin but does not match what
// the host pinned.
type Refusal struct {
	Worker string // the worker's id
	Host   string // the machine it runs on
	Pid    int
	Reason string // e.g. "sha256 ab12… differs from the pinned cd34…"
}

func (r Refusal) String() string {
	return fmt.Sprintf("worker %s on %s (pid %d): %s", r.Worker, r.Host, r.Pid, r.Reason)
}

// NoWorkersError reports that no live worker serves the plugin.
type NoWorkersError struct {
	Plugin  string
	Waited  string // how long Start waited, e.g. "10s"
	Live    int    // live workers seen, serving any plugin
	Refused []Refusal
}

func (e *NoWorkersError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: no worker serves this plugin (waited %s; %d live workers). ", e.Plugin, e.Waited, e.Live)
	if len(e.Refused) == 0 {
		fmt.Fprintf(&b, "Start one with `pluginpool worker --connect URL` on a machine whose pool.toml has [plugins.%s]; `pluginpool workers` lists those connected", e.Plugin)
		return b.String()
	}
	b.WriteString("Refused:")
	for _, r := range e.Refused {
		b.WriteString("\n  - ")
		b.WriteString(r.String())
	}
	return b.String()
}

func (e *NoWorkersError) Is(target error) bool {
	return target == ErrNoWorkers || target == backend.ErrStart
}

// LostError reports items whose batch was lost with its worker, or with
// its job, and not run again.
type LostError struct {
	Plugin string
	// Deliveries is how many times JetStream delivered the batch.
	Deliveries int
	// Reason says what happened.
	Reason string
}

// Reasons of a LostError.
const (
	lostNotIdempotent = "its worker died or stopped answering within ack_wait, and it was not run again: the plugin does not declare itself idempotent, and these items may have run"
	lostGaveUp        = "each worker that took it died or stopped answering within ack_wait (max_attempts)"
)

func (e *LostError) Error() string {
	if e.Deliveries > 0 {
		return fmt.Sprintf("%s: batch lost after %d deliveries: %s", e.Plugin, e.Deliveries, e.Reason)
	}
	return fmt.Sprintf("%s: %s", e.Plugin, e.Reason)
}

func (e *LostError) Is(target error) bool { return target == ErrLost || target == backend.ErrCrashed }

// RemoteError is an item's pool error that happened on a worker: a crash,
// a timeout, a degraded slot. It unwraps to the pool's own error type
// (*pool.CrashError, *pool.TimeoutError, ...), so errors.Is and errors.As
// work as they do locally. Task errors (the plugin's own) are not wrapped.
type RemoteError struct {
	Worker string // the worker's id: its machine, pid and a tag
	Err    error
}

func (e *RemoteError) Error() string {
	return fmt.Sprintf("%v (on worker %s)", e.Err, e.Worker)
}

func (e *RemoteError) Unwrap() error { return e.Err }

// PayloadError reports an item, or a result, too large for one NATS
// message: the server's max_payload.
type PayloadError struct {
	Size, Limit int
	Result      bool // the result was too large, not the item
}

func (e *PayloadError) Error() string {
	what := "item"
	if e.Result {
		what = "result"
	}
	return fmt.Sprintf("%s is %d bytes; one NATS message holds at most %d (the server's max_payload): raise it (pluginpool server --max-payload, or max_payload in nats-server.conf), or run this plugin locally",
		what, e.Size, e.Limit)
}

func (e *PayloadError) Is(target error) bool { return target == backend.ErrTooLarge }
