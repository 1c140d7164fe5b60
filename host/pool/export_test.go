package pool

import (
	"os"
	"strconv"
)

// CgroupSupport reports whether pools on this machine get a cgroup per
// worker, and whether with the memory controller, by trying to create one.
func CgroupSupport() (cgroup, memory bool) {
	cg, err := newPoolCgroup("pluginpool-probe-"+strconv.Itoa(os.Getpid()), true)
	if err != nil {
		return false, false
	}
	defer cg.remove()
	return true, cg.memory
}

// WithoutCgroups makes the pools started until restore is called do without
// cgroups, as on a machine that delegates none.
func WithoutCgroups() (restore func()) {
	withoutCgroups.Store(true)
	return func() { withoutCgroups.Store(false) }
}

// OwnCgroup is the cgroup v2 directory pools create theirs in, or "".
func OwnCgroup() string {
	dir, _ := ownCgroup()
	return dir
}
