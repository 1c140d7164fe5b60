package sdk

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves a goroutine behind: every
// Run stream, watcher and receiver must be waited for.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
