//go:build !linux

package spool_test

import "syscall"

func childProcAttr() *syscall.SysProcAttr { return nil }
