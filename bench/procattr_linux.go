package main

import "syscall"

// procAttr puts the bridge in its own process group, so a terminal's Ctrl-C reaches only
// the benchmark, which then stops the bridge gracefully; and has the kernel stop the bridge
// if the benchmark dies first, so an interrupted run leaves no bridge behind.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
