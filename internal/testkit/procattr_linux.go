package testkit

import "syscall"

// procAttr puts a process under test in its own process group (a terminal's Ctrl-C is for go
// test, whose cleanup kills it) and has the kernel kill it if the test binary dies without
// running its cleanups (a panic or a -timeout).
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
