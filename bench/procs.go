package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
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

// clockTicks is the kernel's clock tick rate (USER_HZ), the unit of
// /proc/<pid>/stat's CPU times: 100 on every Linux this runs on.
const clockTicks = 100

// procCPUSeconds is a process's user+sys CPU time so far, from
// /proc/<pid>/stat (fields 14 and 15).
func procCPUSeconds(pid int) (float64, bool) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, false
	}
	// The command name (field 2) may hold spaces: fields start after ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, false
	}
	user, err1 := strconv.ParseFloat(f[11], 64)
	sys, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return (user + sys) / clockTicks, true
}

// procCmdline is a process's arguments.
func procCmdline(pid int) []string {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil {
		return nil
	}
	return strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
}

// transcoderPIDs lists the node transcoders running below this process (the
// in-process nodes of testcluster start them as children): ffmpeg with the
// node's progress pipe and at least one output pipe (media.FFmpegArgs).
// Publishers and the slate's one-off encodes do not match.
func transcoderPIDs() []int {
	var out []int
	for _, p := range descendants(procTable(), os.Getpid()) {
		if p.Comm != "ffmpeg" {
			continue
		}
		args := procCmdline(p.PID)
		progress, pipes := false, false
		for i, a := range args {
			if a == "-progress" && i+1 < len(args) && args[i+1] == "pipe:1" {
				progress = true
			}
			if a == "pipe:3" {
				pipes = true
			}
		}
		if progress && pipes {
			out = append(out, p.PID)
		}
	}
	return out
}

// transcoderCPU measures the CPU seconds the node transcoders below this
// process use over window. It fails when the set of transcoders changed
// meanwhile (one started or stopped: the window is not comparable).
func transcoderCPU(ctx context.Context, window time.Duration) (cpu float64, n int, err error) {
	before := map[int]float64{}
	for _, pid := range transcoderPIDs() {
		if c, ok := procCPUSeconds(pid); ok {
			before[pid] = c
		}
	}
	if err := sleepCtx(ctx, window); err != nil {
		return 0, 0, err
	}
	after := transcoderPIDs()
	if len(after) != len(before) {
		return 0, 0, fmt.Errorf("transcoders changed during the window: %d before, %d after", len(before), len(after))
	}
	for _, pid := range after {
		b, ok := before[pid]
		if !ok {
			return 0, 0, fmt.Errorf("transcoder %d started during the window", pid)
		}
		c, ok := procCPUSeconds(pid)
		if !ok {
			return 0, 0, fmt.Errorf("transcoder %d ended during the window", pid)
		}
		cpu += c - b
	}
	return cpu, len(after), nil
}

// cpuRoles is CPU seconds so far by role, for this process (the in-process
// nodes and the bench itself) and every process below it, by pid.
type cpuRoles map[int]struct {
	role string
	cpu  float64
}

// roleOf names what a process below the bench is: a node transcoder, a
// publisher, mediamtx, or something else.
func roleOf(p procInfo, self int) string {
	switch {
	case p.PID == self:
		return "nodes+bench"
	case strings.HasPrefix(p.Comm, "mediamtx"):
		return "mediamtx"
	case p.Comm == "ffmpeg":
		args := procCmdline(p.PID)
		if slices.Contains(args, "pipe:3") {
			return "transcoders"
		}
		if n := len(args); n > 0 && (strings.HasPrefix(args[n-1], "rtmp://") || strings.HasPrefix(args[n-1], "srt://")) {
			return "publishers"
		}
	}
	return "other"
}

func readCPURoles() cpuRoles {
	self := os.Getpid()
	out := cpuRoles{}
	for _, p := range descendants(procTable(), self) {
		if c, ok := procCPUSeconds(p.PID); ok {
			out[p.PID] = struct {
				role string
				cpu  float64
			}{roleOf(p, self), c}
		}
	}
	return out
}

// since is each role's share of one core between two readings taken d
// apart (a process that started meanwhile counts from its start; one that
// ended is left out).
func (c cpuRoles) since(prev cpuRoles, d time.Duration) map[string]float64 {
	out := map[string]float64{}
	for pid, now := range c {
		out[now.role] += (now.cpu - prev[pid].cpu) / d.Seconds()
	}
	return out
}

// fmtRoles prints roles' core shares as percentages, largest first.
func fmtRoles(m map[string]float64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return m[keys[i]] > m[keys[j]] })
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %.0f%%", k, m[k]*100))
	}
	return strings.Join(parts, ", ")
}
