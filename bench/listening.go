package main

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// listeningAddr returns the loopback address process pid listens on, from /proc: the bridge
// is started on port 0 and binds a port of its own, so that no port is picked free and then
// bound by another process first. It fails until the process listens, or if it listens on
// more than one address. Addresses in ignore (a profiler's) do not count.
func listeningAddr(pid int, ignore ...string) (string, error) {
	inodes, err := socketInodes(pid)
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/tcp", pid))
	if err != nil {
		return "", err
	}
	var found []string
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 10 || f[3] != "0A" || !inodes[f[9]] { // 0A: LISTEN
			continue
		}
		addr, err := hexAddr(f[1])
		if err != nil {
			return "", err
		}
		if !slices.Contains(ignore, addr) {
			found = append(found, addr)
		}
	}
	switch len(found) {
	case 0:
		return "", errors.New("not listening yet")
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("listening on %d addresses: %v", len(found), found)
}

// socketInodes returns the inodes of the sockets process pid holds open.
func socketInodes(pid int) (map[string]bool, error) {
	fds, err := filepath.Glob(fmt.Sprintf("/proc/%d/fd/*", pid))
	if err != nil {
		return nil, err
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		if target, err := os.Readlink(fd); err == nil {
			if inode, ok := strings.CutPrefix(target, "socket:["); ok {
				inodes[strings.TrimSuffix(inode, "]")] = true
			}
		}
	}
	return inodes, nil
}

// hexAddr decodes /proc/net/tcp's IPv4 "0100007F:1F90" (address in host byte order, here
// little-endian, and port) into "127.0.0.1:8080".
func hexAddr(s string) (string, error) {
	ip, port, ok := strings.Cut(s, ":")
	raw, err := hex.DecodeString(ip)
	if !ok || err != nil || len(raw) != 4 {
		return "", fmt.Errorf("/proc/net/tcp: address %q", s)
	}
	p, err := strconv.ParseUint(port, 16, 16)
	if err != nil {
		return "", fmt.Errorf("/proc/net/tcp: port %q", s)
	}
	return net.JoinHostPort(net.IPv4(raw[3], raw[2], raw[1], raw[0]).String(), strconv.FormatUint(p, 10)), nil
}
