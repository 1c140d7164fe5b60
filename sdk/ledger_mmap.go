//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package sdk

import (
	"syscall"
	"unsafe"
)

// mapLedger maps the ledger file at fd, shared with the host, and closes
// fd (the mapping keeps the file; processes the plugin starts do not
// inherit it).
func mapLedger(fd int) *uint64 {
	var st syscall.Stat_t
	if syscall.Fstat(fd, &st) != nil || st.Mode&syscall.S_IFMT != syscall.S_IFREG || st.Size < ledgerSize {
		return nil
	}
	mem, err := syscall.Mmap(fd, 0, ledgerSize, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	syscall.Close(fd)
	if err != nil {
		return nil
	}
	// The mapping is page-aligned, so the word at offset 8 is 8-aligned.
	return (*uint64)(unsafe.Pointer(&mem[ledgerOffset]))
}
