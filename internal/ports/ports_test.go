package ports

import (
	"net"
	"strconv"
	"testing"
)

func TestFreeIsOutsideTheEphemeralRange(t *testing.T) {
	elo, ehi := readRange()
	seen := map[int]bool{}
	for range 50 {
		p, err := Free()
		if err != nil {
			t.Fatal(err)
		}
		if lo, hi := span(elo, ehi); hi > lo && (p < lo || p >= hi) {
			t.Fatalf("port %d outside [%d, %d); the ephemeral range is %d–%d", p, lo, hi, elo, ehi)
		}
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			t.Fatalf("port %d is not free: %v", p, err)
		}
		_ = l.Close()
	}
}

func TestSpan(t *testing.T) {
	for _, c := range []struct{ elo, ehi, lo, hi int }{
		{32768, 60999, low, 32768},
		{49152, 65535, low, 49152},
		{1024, 60000, 60001, 65536},
		{1024, 65000, 0, 0},
	} {
		if lo, hi := span(c.elo, c.ehi); lo != c.lo || hi != c.hi {
			t.Errorf("span(%d, %d) = [%d, %d); want [%d, %d)", c.elo, c.ehi, lo, hi, c.lo, c.hi)
		}
	}
}
