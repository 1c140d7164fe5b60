//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package sdk

// mapLedger: no ledger where the SDK does not map files; the host falls
// back to assuming that every unanswered task may have run.
func mapLedger(int) *uint64 { return nil }
