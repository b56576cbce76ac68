package testkit

import "syscall"

// procAttr puts a child in a process group of its own (a terminal's Ctrl-C is for go
// test, which then kills it) and has the kernel kill it if the test binary dies without
// running its cleanups (a panic or a -timeout).
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
