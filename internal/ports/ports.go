// Package ports picks the loopback ports of the servers tests start (Kafka, Redis,
// PostgreSQL).
//
// A port asked of the kernel with ":0" comes from its ephemeral range, the range it also
// picks the local end of every outgoing connection from. A test that stops a server and
// starts it again on the same port (a broker restarted under a running bridge) can then find
// the port taken by some connection opened meanwhile, and the server fails to bind. Free
// picks below that range instead, where no outgoing connection lands.
package ports

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
)

// low is the lowest port Free picks: above the ports services are usually configured on.
const low = 20000

var (
	mu     sync.Mutex
	handed = map[int]bool{} // ports this process has handed out
)

// Free returns a port on 127.0.0.1 that nothing listens on now, outside the kernel's
// ephemeral range and not handed out before by this process. Where the range cannot be
// read, or leaves no room, it falls back to a port the kernel picks.
func Free() (int, error) {
	mu.Lock()
	defer mu.Unlock()
	lo, hi := span(readRange())
	for range 200 {
		if hi <= lo {
			break
		}
		p := lo + rand.IntN(hi-lo) //nolint:gosec // a port to try, not a secret
		if handed[p] || !listenable(p) {
			continue
		}
		handed[p] = true
		return p, nil
	}
	for range 20 {
		p, err := kernelPort()
		if err != nil {
			return 0, err
		}
		if !handed[p] {
			handed[p] = true
			return p, nil
		}
	}
	return 0, errors.New("ports: no free port found")
}

// span is the range Free picks from, [lo, hi), given the ephemeral range [elo, ehi]: below
// it when there is room, else above it.
func span(elo, ehi int) (lo, hi int) {
	switch {
	case elo-low >= 1000:
		return low, elo
	case 65535-ehi >= 1000:
		return ehi + 1, 65536
	}
	return 0, 0
}

// readRange reads Linux's ephemeral port range; elsewhere, IANA's (49152–65535).
func readRange() (lo, hi int) {
	data, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		f := strings.Fields(string(data))
		if len(f) == 2 {
			l, err1 := strconv.Atoi(f[0])
			h, err2 := strconv.Atoi(f[1])
			if err1 == nil && err2 == nil && l <= h {
				return l, h
			}
		}
	}
	return 49152, 65535
}

func listenable(p int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	if err != nil {
		return false
	}
	_ = l.Close()
	return true
}

func kernelPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("ports: %w", err)
	}
	defer l.Close()
	addr, ok := l.Addr().(*net.TCPAddr)
	if !ok {
		return 0, errors.New("ports: listener address is not TCP")
	}
	return addr.Port, nil
}
