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
	return s
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
