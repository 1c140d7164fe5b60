//go:build amd64 || arm64 || riscv64 || loong64 || ppc64le || mips64le

package sdk

// ledgerStore writes the ledger word. On these little-endian 64-bit
// machines an aligned 8-byte store is a single store, which is all the
// ledger needs: the host reads the word only through the page cache, after
// the process died or while it runs a task. An atomic store (XCHG on amd64,
// a full barrier) would cost ~20 cycles twice per task, a noticeable part
// of a trivial task's ~170 ns; this costs nothing measurable. Calls on
// either side of the task keep the compiler from moving or merging the
// stores.
func ledgerStore(p *uint64, v uint64) { *p = v }
