//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package sdk

import (
	"encoding/binary"
	"os"
	"strconv"
	"syscall"
	"testing"
)

// openLedger maps the file the host passes and writes the word where the
// host reads it, little-endian at offset 8; anything unusable means no
// ledger, never a failure.
func TestOpenLedger(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "ledger")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(ledgerSize); err != nil {
		t.Fatal(err)
	}
	fd, err := syscall.Dup(int(f.Fd())) // openLedger closes what it maps
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(ledgerEnv, strconv.Itoa(fd))
	l := openLedger()
	if l == nil {
		t.Fatal("openLedger = nil for a 64-byte file")
	}
	if _, ok := os.LookupEnv(ledgerEnv); ok {
		t.Errorf("%s is still set: a child of the plugin would inherit it", ledgerEnv)
	}
	markStart(l, 21)
	var b [8]byte
	if _, err := f.ReadAt(b[:], ledgerOffset); err != nil || binary.LittleEndian.Uint64(b[:]) != 21<<1|1 {
		t.Errorf("the file holds %x (%v); want 21<<1|1 at offset 8", b, err)
	}
	markDone(l, 21)
	if _, err := f.ReadAt(b[:], ledgerOffset); err != nil || binary.LittleEndian.Uint64(b[:]) != 21<<1 {
		t.Errorf("the file holds %x (%v); want 21<<1 at offset 8", b, err)
	}
	markStart(nil, 1) // no ledger: a no-op

	short, err := os.CreateTemp(t.TempDir(), "short")
	if err != nil {
		t.Fatal(err)
	}
	defer short.Close()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	for _, v := range []string{"", "x", "-1", "1", "2", "999999", strconv.Itoa(int(short.Fd())), strconv.Itoa(int(r.Fd()))} {
		t.Setenv(ledgerEnv, v)
		if openLedger() != nil {
			t.Errorf("%s=%q: got a ledger; want none", ledgerEnv, v)
		}
	}
}
