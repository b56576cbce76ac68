package retries_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/socialbridge/bridge/consumers/internal/grouptest"
	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/internal/kafkatest"
)

// TestMovesAreExactlyOnceAcrossKills kills the consumer (SIGKILL of a child process) while
// the action is answering, that is between a record's effect and its commit, several times,
// restarting it each time. Every call fails, so each event goes through both retry topics
// to the DLQ: each must be in each retry topic and in the DLQ exactly once.
func TestMovesAreExactlyOnceAcrossKills(t *testing.T) {
	brokers, prefix := kafkatest.Brokers(t), kafkatest.Prefix(t)
	kill := make(chan chan struct{})
	killAt := map[int]bool{4: true, 30: true, 61: true, 95: true}
	var p *provider
	p = newProvider(t, func(_ string, _ int, w http.ResponseWriter) {
		p.mu.Lock()
		n := len(p.calls)
		p.mu.Unlock()
		if killAt[n] {
			done := make(chan struct{})
			select {
			case kill <- done:
				<-done // the consumer is dead: this answer goes nowhere
			case <-time.After(time.Minute):
			}
		}
		w.WriteHeader(http.StatusInternalServerError)
	})
	yaml := config(brokers, prefix, p.srv.URL)

	const n = 40
	var evs []*event.Event
	for i := range n {
		evs = append(evs, failed(fmt.Sprintf("evt_kill_%02d", i), nil))
	}
	grouptest.Produce(t, brokers, prefix, 0, evs[:n/2]...)
	grouptest.Produce(t, brokers, prefix, 1, evs[n/2:]...)

	proc := grouptest.Child(t, yaml)
	kills := 0
	dlqDone := make(chan struct{})
	go func() {
		kafkatest.ReadCommitted(t, brokers, event.DLQTopic(prefix), n, 0, 4*time.Minute)
		close(dlqDone)
	}()
	for running := true; running; {
		select {
		case done := <-kill:
			proc.Kill()
			kills++
			close(done)
			proc = grouptest.Child(t, yaml)
		case <-dlqDone:
			running = false
		}
	}
	if kills < 3 {
		t.Fatalf("the consumer was killed %d times, want at least 3", kills)
	}
	proc.Kill()

	for _, topic := range []string{event.RetryTopic(prefix, 1), event.RetryTopic(prefix, 2), event.DLQTopic(prefix)} {
		counts := map[string]int{}
		for _, r := range kafkatest.ReadCommitted(t, brokers, topic, n, 2*time.Second, time.Minute) {
			counts[string(r.Key)]++
		}
		for _, ev := range evs {
			if counts[ev.ID] != 1 {
				t.Errorf("%s holds %s %d times, want exactly once", topic, ev.ID, counts[ev.ID])
			}
		}
		if len(counts) != n {
			t.Errorf("%s holds %d distinct events, want %d", topic, len(counts), n)
		}
	}
	t.Logf("%d kills, %d action calls for %d events × 3 attempts", kills, p.total(), n)
}
