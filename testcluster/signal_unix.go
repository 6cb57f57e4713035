//go:build unix

package testcluster

import "syscall"

var interruptSignal = syscall.SIGINT
