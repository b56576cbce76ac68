package kafkatest

import (
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestRestartOutlastsAPortTakenForAWhile: a broker restarted while something holds its port
// (the local end of an outgoing connection, on a busy machine) exits on its own; Start tries
// again and the broker comes back on the same address once the port is free, instead of
// failing the test it serves. The error Kafka logged is what Start shows of the failed try.
func TestRestartOutlastsAPortTakenForAWhile(t *testing.T) {
	t.Parallel()
	b := StartBroker(t)
	b.Stop()
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(b.port)))
	if err != nil {
		t.Fatalf("holding the stopped broker's port: %v", err)
	}
	released := make(chan struct{})
	go func() {
		defer close(released)
		deadline := time.Now().Add(2 * time.Minute)
		for !strings.Contains(b.errorLines(20), "Address already in use") && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond) // poll the log for the failed bind
		}
		_ = l.Close()
	}()
	b.Start()
	<-released
	if err := waitReady(t.Context(), []string{b.Addr()}, nil, b.cluster); err != nil {
		t.Fatalf("after Start: %v", err)
	}
	if n := strings.Count(b.logTail(1<<20), startMark); n < 3 {
		t.Fatalf("%d starts logged; want the first, the failed restart and the one that served", n)
	}
}
