package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cpuSample is a snapshot of the machine's CPU time and of this process's
// and its waited-for descendants': the difference over a stretch of time
// is what other processes took. A bench on a shared machine is only as
// good as that figure is small.
type cpuSample struct {
	at   time.Time
	busy time.Duration // all CPUs, /proc/stat
	ours time.Duration // getrusage SELF + CHILDREN
}

func sampleCPU() cpuSample {
	s := cpuSample{at: time.Now(), busy: -1}
	if data, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(data), "\n")
		f := strings.Fields(line)
		if len(f) >= 9 && f[0] == "cpu" {
			var jiffies int64
			for i, v := range f[1:9] {
				if i == 3 || i == 4 { // idle, iowait
					continue
				}
				n, _ := strconv.ParseInt(v, 10, 64)
				jiffies += n
			}
			s.busy = time.Duration(jiffies) * time.Second / 100 // USER_HZ
		}
	}
	for _, who := range []int{syscall.RUSAGE_SELF, syscall.RUSAGE_CHILDREN} {
		var ru syscall.Rusage
		if syscall.Getrusage(who, &ru) == nil {
			s.ours += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		}
	}
	// Children still running (W8 and W9's server and workers, and their
	// plugins) are ours too; getrusage counts them only once waited for.
	s.ours += treeCPU(os.Getpid())
	return s
}

// treeCPU is the CPU time of pid's live descendants, each with what its
// own waited-for children used (/proc/PID/stat).
func treeCPU(pid int) time.Duration {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	type stat struct {
		ppid int
		cpu  time.Duration
	}
	procs := map[int]stat{}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// Fields after the command (which may hold spaces) in parentheses.
		i := strings.LastIndexByte(string(data), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(data[i+1:]))
		if len(f) < 15 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		var ticks int64
		for _, k := range []int{11, 12, 13, 14} { // utime stime cutime cstime
			n, _ := strconv.ParseInt(f[k], 10, 64)
			ticks += n
		}
		procs[p] = stat{ppid, time.Duration(ticks) * time.Second / 100}
	}
	var sum time.Duration
	for _, st := range procs {
		for a := st.ppid; a > 1; a = procs[a].ppid {
			if a == pid {
				sum += st.cpu
				break
			}
			if _, ok := procs[a]; !ok {
				break
			}
		}
	}
	return sum
}

// othersSince is the share of all CPUs that other processes used since
// s0, from 0 to 1, or -1 if unknown.
func othersSince(s0 cpuSample) float64 {
	s1 := sampleCPU()
	wall := s1.at.Sub(s0.at)
	if s0.busy < 0 || s1.busy < 0 || wall <= 0 {
		return -1
	}
	others := (s1.busy - s0.busy) - (s1.ours - s0.ours)
	return max(0, float64(others)/float64(wall)/float64(runtime.NumCPU()))
}

func othersNote(share float64) string {
	if share < 0 {
		return "CPU use of other processes unknown"
	}
	s := fmt.Sprintf("other processes used %.0f%% of the CPUs meanwhile", 100*share)
	if share > 0.10 {
		s += " — figures are unreliable, rerun on a quiet machine"
	}
	return s
}
