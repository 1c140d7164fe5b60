//go:build !unix

package pool

import (
	"errors"
	"os"
)

// lanePair: without unix socket pairs, the Run stream stays on gRPC.
func lanePair() (host, plugin *os.File, err error) {
	return nil, nil, errors.New("no socket pairs on this system")
}
