//go:build !linux

package analytics

import "syscall"

func childProcAttr() *syscall.SysProcAttr { return nil }
