package chaos

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// prefix starts the name of every namespace and mount a run makes, followed
// by the pid of the test process: the sweep removes only what belongs to
// a process that is gone, so two runs on one machine leave each other alone.
const (
	nsPrefix    = "dch"
	mountPrefix = "dionysia-chaos-"
	subnet      = "10.77.0."
	clientIP    = subnet + "100"
	// nftTable is the table every fault rule lives in, one per node namespace.
	nftTable = "dchaos"
)

// nodeIP is node i's address inside its namespace.
func nodeIP(i int) string { return subnet + strconv.Itoa(11+i) }

// Net is one run's namespaces: a hub with a bridge, one namespace per node
// and one for the client.
type Net struct {
	run    string // dch<pid>
	Client string // the client namespace
	Nodes  []string
	hub    string
}

// run runs a command and returns its combined output in the error.
func run(ctx context.Context, name string, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// runIn runs a command inside a namespace.
func runIn(ctx context.Context, ns, name string, args ...string) error {
	return run(ctx, "ip", append([]string{"netns", "exec", ns, name}, args...)...)
}

// NewNet makes the hub, n node namespaces and the client namespace, wired to
// one bridge. The caller must Close it (also when NewNet fails half-way).
func NewNet(ctx context.Context, n int) (*Net, error) {
	run0 := nsPrefix + strconv.Itoa(os.Getpid())
	nt := &Net{run: run0, hub: run0 + "-hub", Client: run0 + "-cl"}
	for i := range n {
		nt.Nodes = append(nt.Nodes, fmt.Sprintf("%s-n%d", run0, i))
	}
	steps := [][]string{
		{"netns", "add", nt.hub},
		{"-n", nt.hub, "link", "set", "lo", "up"},
		{"-n", nt.hub, "link", "add", "br0", "type", "bridge"},
		{"-n", nt.hub, "link", "set", "br0", "up"},
	}
	for _, s := range steps {
		if err := run(ctx, "ip", s...); err != nil {
			return nt, err
		}
	}
	for i, ns := range nt.Nodes {
		if err := nt.attach(ctx, ns, fmt.Sprintf("vn%d", i), nodeIP(i)); err != nil {
			return nt, err
		}
	}
	return nt, nt.attach(ctx, nt.Client, "vcl", clientIP)
}

// attach makes namespace ns with loopback up and eth0 at ip, a veth whose
// other end (hubEnd) is on the hub's bridge.
func (nt *Net) attach(ctx context.Context, ns, hubEnd, ip string) error {
	steps := [][]string{
		{"netns", "add", ns},
		// Loopback carries each node's traffic with its own mediamtx.
		{"-n", ns, "link", "set", "lo", "up"},
		{"-n", nt.hub, "link", "add", hubEnd, "type", "veth", "peer", "name", "eth0", "netns", ns},
		{"-n", nt.hub, "link", "set", hubEnd, "master", "br0"},
		{"-n", nt.hub, "link", "set", hubEnd, "up"},
		{"-n", ns, "addr", "add", ip + "/24", "dev", "eth0"},
		{"-n", ns, "link", "set", "eth0", "up"},
	}
	for _, s := range steps {
		if err := run(ctx, "ip", s...); err != nil {
			return err
		}
	}
	return nil
}

// Close kills whatever still runs in the run's namespaces and deletes them
// (which also drops their nftables tables and qdiscs).
func (nt *Net) Close() error {
	var errs []string
	for _, ns := range append(append([]string{nt.Client}, nt.Nodes...), nt.hub) {
		if err := deleteNS(ns); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("close net: %s", strings.Join(errs, "; "))
	}
	return nil
}

// deleteNS kills the processes in ns and deletes it; a namespace that does
// not exist is not an error.
func deleteNS(ns string) error {
	if _, err := os.Stat(filepath.Join("/var/run/netns", ns)); err != nil {
		return nil
	}
	ctx := context.Background()
	if out, err := exec.CommandContext(ctx, "ip", "netns", "pids", ns).Output(); err == nil {
		for _, f := range strings.Fields(string(out)) {
			// The test process itself may be listed: a thread that dialled
			// from the client namespace can be its main thread, which the
			// runtime keeps (wedged) instead of ending it.
			if pid, err := strconv.Atoi(f); err == nil && pid > 1 && pid != os.Getpid() {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	return run(ctx, "ip", "netns", "del", ns)
}

// keepLogs is how long the sweep leaves a gone run's directory (its node
// logs) alone.
const keepLogs = 6 * time.Hour

var leftoverName = regexp.MustCompile(`^` + nsPrefix + `(\d+)-`)

// ownerGone reports whether the run that made a namespace or mount (named
// with its pid) has ended: no such process, or a process that is not a test
// binary (the pid was reused).
func ownerGone(pid int) bool {
	if pid == os.Getpid() {
		return false
	}
	cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return true
	}
	return !bytes.Contains(cmd, []byte(".test"))
}

// Sweep removes what earlier runs left behind when they were killed before
// their cleanup ran: namespaces (with their processes, rules and qdiscs) and
// tmpfs mounts. It leaves alone what belongs to runs still alive.
func Sweep() []string {
	var swept []string
	out, _ := exec.Command("ip", "netns", "list").Output()
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		m := leftoverName.FindStringSubmatch(f[0])
		if m == nil {
			continue
		}
		if pid, _ := strconv.Atoi(m[1]); ownerGone(pid) {
			if err := deleteNS(f[0]); err == nil {
				swept = append(swept, "netns "+f[0])
			}
		}
	}
	mounts, _ := os.ReadFile("/proc/self/mounts")
	mountRe := regexp.MustCompile(regexp.QuoteMeta(mountPrefix) + `(\d+)-`)
	for _, line := range strings.Split(string(mounts), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		m := mountRe.FindStringSubmatch(f[1])
		if m == nil {
			continue
		}
		if pid, _ := strconv.Atoi(m[1]); ownerGone(pid) {
			if err := unix.Unmount(f[1], unix.MNT_DETACH); err == nil {
				swept = append(swept, "mount "+f[1])
			}
		}
	}
	// Leftover base dirs (their mounts are gone now) only cost disk space;
	// a failed run's node logs stay for keepLogs, so that a rerun right
	// after a failure does not sweep away its post-mortem.
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), mountPrefix+"*"))
	for _, d := range dirs {
		m := mountRe.FindStringSubmatch(filepath.Base(d) + "-")
		if m == nil {
			continue
		}
		if fi, err := os.Stat(d); err == nil && time.Since(fi.ModTime()) < keepLogs {
			continue
		}
		if pid, _ := strconv.Atoi(m[1]); ownerGone(pid) {
			if os.RemoveAll(d) == nil {
				swept = append(swept, "dir "+d)
			}
		}
	}
	return swept
}

// DialContext opens a connection from inside the client namespace. The
// socket is created on an OS thread moved into that namespace; the thread is
// never unlocked, so the runtime discards it when the goroutine ends and no
// other goroutine ever runs in the client namespace by accident. A socket
// keeps the namespace it was made in, so the connection works from any
// goroutine afterwards.
func (nt *Net) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		fd, err := unix.Open(filepath.Join("/var/run/netns", nt.Client), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			ch <- result{err: fmt.Errorf("open netns %s: %w", nt.Client, err)}
			return
		}
		err = unix.Setns(fd, unix.CLONE_NEWNET)
		unix.Close(fd)
		if err != nil {
			ch <- result{err: fmt.Errorf("setns %s: %w", nt.Client, err)}
			return
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		ch <- result{c, err}
	}()
	r := <-ch
	return r.c, r.err
}

// Exec returns a command that runs inside namespace ns.
func Exec(ctx context.Context, ns, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns, name}, args...)...)
}
