package pool

import (
	"encoding/binary"
	"os"
)

// ledgerFile is the host's end of a worker's start ledger (worker.proto,
// "The start ledger"; the policy built on it is in crash.go). The plugin
// maps the file and writes one word; the host reads it through its own
// descriptor: the same page cache, so a read sees the plugin's last store
// even after the process died.
type ledgerFile struct {
	f *os.File
}

const (
	ledgerSize   = 64 // bytes, as worker.proto promises the plugin
	ledgerOffset = 8  // of the word
	// ledgerFD is the descriptor the plugin inherits it as: the first of
	// exec.Cmd.ExtraFiles.
	ledgerFD  = "3"
	ledgerEnv = "PLUGINPOOL_LEDGER_FD"
)

// newLedger creates a worker's ledger: a 64-byte file in memory where the
// system has them (Linux's memfd: no file system, no writeback), else a
// temporary file unlinked at once; either way nothing is left behind
// however the host ends.
func newLedger() (*ledgerFile, error) {
	f, err := memFile("pluginpool-ledger")
	if err != nil {
		if f, err = os.CreateTemp("", "pluginpool-ledger-*"); err != nil {
			return nil, err
		}
		os.Remove(f.Name())
	}
	if err := f.Truncate(ledgerSize); err != nil {
		f.Close()
		return nil, err
	}
	return &ledgerFile{f: f}, nil
}

// read returns the ledger's word: id<<1|1 while task id runs, id<<1 once
// it returned, 0 before any task (or when l is nil, or unreadable). The
// plugin writes the word with one 8-byte store but the kernel may copy it
// out in pieces, so a read taken while the plugin runs is repeated until
// two agree.
func (l *ledgerFile) read() uint64 {
	if l == nil {
		return 0
	}
	var b [8]byte
	prev := uint64(0)
	for i := range 4 {
		if _, err := l.f.ReadAt(b[:], ledgerOffset); err != nil {
			return 0
		}
		w := binary.LittleEndian.Uint64(b[:])
		if i > 0 && w == prev {
			break
		}
		prev = w
	}
	return prev
}

// close releases the host's descriptor. Safe on nil.
func (l *ledgerFile) close() {
	if l != nil {
		l.f.Close()
	}
}
