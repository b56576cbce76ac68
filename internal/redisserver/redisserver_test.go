package redisserver

import (
	"testing"
)

// TestStartAnswersAsItself: a started server answers on its address as itself (its own
// process id, not another server's that held the port), and again after a kill and a start.
func TestStartAnswersAsItself(t *testing.T) {
	s := Require(t)
	for i := range 2 {
		if pid, err := ping(s.Addr()); err != nil || pid != s.Pid() {
			t.Fatalf("start %d: %s answered as process %d (%v), want %d", i+1, s.Addr(), pid, err, s.Pid())
		}
		if err := s.Kill(); err != nil {
			t.Fatal(err)
		}
		if err := s.Start(); err != nil {
			t.Fatal(err)
		}
	}
}
