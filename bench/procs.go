package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// cpuRun is the cost of one child process.
type cpuRun struct {
	CPU  float64 // user+sys seconds (the child's rusage)
	Wall float64 // seconds
}

// runCPU runs a command to completion and returns its rusage.
func runCPU(ctx context.Context, name string, args ...string) (cpuRun, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start).Seconds()
	if err != nil {
		return cpuRun{}, fmt.Errorf("%s: %w: %s", name, err, lastLines(stderr.String(), 5))
	}
	ps := cmd.ProcessState
	return cpuRun{CPU: (ps.UserTime() + ps.SystemTime()).Seconds(), Wall: wall}, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// procInfo is one process of a tree.
type procInfo struct {
	PID   int
	PPID  int
	Comm  string
	RSSkB int
}

// procTable reads every process's parent, name and RSS from /proc.
func procTable() map[int]procInfo {
	out := map[int]procInfo{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "status"))
		if err != nil {
			continue
		}
		p := procInfo{PID: pid}
		for _, l := range strings.Split(string(b), "\n") {
			k, v, ok := strings.Cut(l, ":")
			if !ok {
				continue
			}
			v = strings.TrimSpace(v)
			switch k {
			case "Name":
				p.Comm = v
			case "PPid":
				p.PPID, _ = strconv.Atoi(v)
			case "VmRSS":
				p.RSSkB, _ = strconv.Atoi(strings.Fields(v)[0])
			}
		}
		out[pid] = p
	}
	return out
}

// descendants returns pid and every process below it.
func descendants(tab map[int]procInfo, pid int) []procInfo {
	var out []procInfo
	if p, ok := tab[pid]; ok {
		out = append(out, p)
	}
	for _, p := range tab {
		if p.PPID == pid {
			out = append(out, descendants(tab, p.PID)...)
		}
	}
	return out
}
