//go:build !linux

package pool

// Cgroups are Linux-only.
type cgroup struct {
	dir    string
	memory bool
}

func newPoolCgroup(string, bool) (*cgroup, error) { return nil, errNoCgroup }

func (*cgroup) worker(uint64, int64) (*workerCgroup, error) { return nil, errNoCgroup }

func (*cgroup) remove() error { return nil }

type workerCgroup struct{}

func (*workerCgroup) fdNum() int      { return -1 }
func (*workerCgroup) started()        {}
func (*workerCgroup) kill()           {}
func (*workerCgroup) oomKilled() bool { return false }
func (*workerCgroup) remove() error   { return nil }
