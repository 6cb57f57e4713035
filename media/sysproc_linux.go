//go:build linux

package media

import "syscall"

// childSysProcAttr puts children in their own process group, so a Ctrl-C in
// the node's terminal does not reach them directly (the node stops them in
// its own order), and asks the kernel to kill them if the node dies without
// stopping them, so no orphan keeps a port or a stream.
func childSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
