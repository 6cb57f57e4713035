package testcluster

import (
	"fmt"
	"net"
	"sync"
)

// portMu and usedPorts keep one test binary from handing the same port to two
// nodes; the OS could otherwise return a just-closed port twice.
var (
	portMu    sync.Mutex
	usedPorts = map[int]bool{}
)

// FreePort returns a loopback port that is free for both TCP and UDP (gossip
// and SRT need both).
func FreePort() (int, error) {
	portMu.Lock()
	defer portMu.Unlock()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		l.Close()
		if err != nil {
			continue
		}
		u.Close()
		if usedPorts[port] {
			continue
		}
		usedPorts[port] = true
		return port, nil
	}
	return 0, fmt.Errorf("no free port found")
}
