//go:build !linux

package media

import "syscall"

// childSysProcAttr puts children in their own process group, so a Ctrl-C in
// the node's terminal does not reach them directly.
func childSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
