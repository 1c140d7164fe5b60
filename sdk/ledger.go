package sdk

import (
	"os"
	"strconv"
)

// The start ledger (worker.proto, "The start ledger"): the host passes a
// small file as an inherited descriptor; the runner writes, with one aligned
// 8-byte store, id<<1|1 before each task and id<<1 after it returns. When
// the process dies the word is still in the host's page cache, so the host
// knows which task was running and which of the tasks it sent never
// started. Cost: two plain stores per task (see ledgerStore).

// ledgerEnv names the environment variable holding the descriptor.
const ledgerEnv = "PLUGINPOOL_LEDGER_FD"

const (
	ledgerSize   = 64 // the file is at least this long
	ledgerOffset = 8  // where the word lives
)

// openLedger maps the ledger the host passed, or returns nil: no variable,
// a bad number, a descriptor that is not a regular file of at least 64
// bytes, or a system without mmap. Without a ledger the plugin works as
// before; the host then assumes that every task it had sent and not seen
// answered may have run. It never fails the plugin.
func openLedger() *uint64 {
	fd, ok := inherited(ledgerEnv)
	if !ok {
		return nil
	}
	return mapLedger(fd)
}

// inherited returns the descriptor the host passed in the variable env,
// and unsets it: a child the plugin starts must not take the descriptor
// for its own. It reports false for no variable or a bad number; 0, 1 and
// 2 are stdio, never one of the host's.
func inherited(env string) (int, bool) {
	s, ok := os.LookupEnv(env)
	if !ok {
		return 0, false
	}
	os.Unsetenv(env)
	fd, err := strconv.Atoi(s)
	return fd, err == nil && fd >= 3
}

// markStart and markDone write the ledger around one task; l may be nil.
func markStart(l *uint64, id uint64) {
	if l != nil {
		ledgerStore(l, id<<1|1)
	}
}

func markDone(l *uint64, id uint64) {
	if l != nil {
		ledgerStore(l, id<<1)
	}
}
