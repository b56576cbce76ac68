//go:build unix

package main

import "syscall"

// openFileLimit is this process's soft limit of open files (Go raises it to the hard limit
// at start; the bridge, a Go program, does the same).
func openFileLimit() uint64 {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0
	}
	return uint64(l.Cur)
}
