package pipeline

// SetMaxPassing sets maxPassing for a test and returns a func restoring it.
func SetMaxPassing(n int) (restore func()) {
	old := maxPassing
	maxPassing = n
	return func() { maxPassing = old }
}
