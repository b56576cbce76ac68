package kafkatest

import "syscall"

// sysProcAttr puts the broker in its own process group (a terminal's Ctrl-C
// is for go test, which then kills it) and has the kernel kill it if the test
// binary dies without running its cleanups (a panic or a -timeout).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
