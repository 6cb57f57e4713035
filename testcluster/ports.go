package testcluster

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// portMu and usedPorts keep one test binary from handing the same port to two
// nodes.
var (
	portMu    sync.Mutex
	usedPorts = map[int]bool{}
)

// FreePort returns a loopback port that is free for both TCP and UDP (gossip
// and SRT need both). It picks below the kernel's ephemeral range: ports the
// kernel hands out by itself (outgoing connections, listeners on port 0 such
// as mediamtx's auth hook) then never collide with a port a test node has
// been given but not bound yet.
func FreePort() (int, error) {
	portMu.Lock()
	defer portMu.Unlock()
	lo, hi := 20000, ephemeralLow()
	if hi-lo < 1000 {
		lo, hi = 10000, 20000
	}
	for range 1000 {
		port := lo + rand.IntN(hi-lo)
		if usedPorts[port] {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		l.Close()
		if err != nil {
			continue
		}
		u.Close()
		usedPorts[port] = true
		return port, nil
	}
	return 0, fmt.Errorf("no free port found")
}

// ephemeralLow is the first port of the kernel's ephemeral range (32768 when
// it cannot be read).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 32768
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || n <= 20000 {
		return 32768
	}
	return n
}

// portInUse reports whether err is a bind that failed because the port was
// taken, and which port.
func portInUse(err error) (int, bool) {
	// memberlist wraps its listener's error as text (%v), not as a chain.
	if !errors.Is(err, syscall.EADDRINUSE) && !strings.Contains(err.Error(), "address already in use") {
		return 0, false
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Addr != nil {
		if _, p, err := net.SplitHostPort(op.Addr.String()); err == nil {
			n, _ := strconv.Atoi(p)
			return n, true
		}
	}
	return 0, true
}

// portHolder names what holds a local TCP port, from /proc: the socket's
// state and the process that has it open ("unknown" when /proc cannot
// tell, e.g. the socket belongs to another namespace or already closed).
func portHolder(port int) string {
	if port == 0 {
		return "unknown"
	}
	states := map[string]string{"01": "established", "06": "time-wait", "0A": "listen", "08": "close-wait", "05": "fin-wait-2"}
	want := fmt.Sprintf(":%04X", port)
	var found []string
	for _, file := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(file)
		if err != nil {
			continue
		}
		for line := range strings.Lines(string(b)) {
			f := strings.Fields(line)
			if len(f) < 10 || !strings.HasSuffix(f[1], want) {
				continue
			}
			state := states[f[3]]
			if state == "" {
				state = "state " + f[3]
			}
			found = append(found, state+" by "+socketOwner(f[9]))
		}
	}
	if len(found) == 0 {
		return "unknown"
	}
	return strings.Join(found, ", ")
}

// socketOwner finds the process with socket inode open.
func socketOwner(inode string) string {
	if inode == "0" {
		return "no process"
	}
	target := "socket:[" + inode + "]"
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		if _, err := strconv.Atoi(p.Name()); err != nil {
			continue
		}
		fds, _ := os.ReadDir(filepath.Join("/proc", p.Name(), "fd"))
		for _, fd := range fds {
			if l, _ := os.Readlink(filepath.Join("/proc", p.Name(), "fd", fd.Name())); l == target {
				cmd, _ := os.ReadFile(filepath.Join("/proc", p.Name(), "cmdline"))
				return fmt.Sprintf("pid %s (%s)", p.Name(), strings.ReplaceAll(strings.TrimSpace(string(cmd)), "\x00", " "))
			}
		}
	}
	return "unknown process"
}
