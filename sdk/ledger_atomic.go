//go:build !(amd64 || arm64 || riscv64 || loong64 || ppc64le || mips64le)

package sdk

import (
	"encoding/binary"
	"sync/atomic"
)

// ledgerStore writes the ledger word little-endian, as worker.proto
// specifies, in one store: on 32-bit machines a plain uint64 store may be
// two.
func ledgerStore(p *uint64, v uint64) {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	atomic.StoreUint64(p, binary.NativeEndian.Uint64(b[:]))
}
