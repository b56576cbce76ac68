package spool_test

import "syscall"

// childProcAttr has the kernel kill a child bridge if the test binary dies first.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
