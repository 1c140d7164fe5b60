//go:build !linux

package pool

import (
	"errors"
	"os"
)

// memFile: no anonymous files here; newLedger falls back to a temporary
// file.
func memFile(string) (*os.File, error) { return nil, errors.ErrUnsupported }
