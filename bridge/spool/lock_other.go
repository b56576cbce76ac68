//go:build !unix

package spool

import (
	"errors"
	"os"
	"path/filepath"
)

func lockDir(dir string) (*os.File, error) {
	return os.OpenFile(filepath.Join(dir, "LOCK"), os.O_RDWR|os.O_CREATE, 0o600)
}

func unlockDir(f *os.File) error { return f.Close() }

func freeBytes(string) (int64, error) { return 0, errors.New("spool: free space unknown") }
