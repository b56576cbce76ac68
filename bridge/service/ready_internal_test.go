package service

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/socialbridge/bridge/bridge/ingress"
	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/internal/kafkatest"
	"github.com/socialbridge/bridge/internal/testkit"
)

// The bound docs/http.md promises: /readyz shows a broker that is gone or frozen within 3 s.
const documentedReadyBound = 3 * time.Second

// TestReadinessBoundIsTheDocumented: a round every readyEvery, each check bounded to
// readyTimeout, add up to the documented bound; the running bridge's rounds tick at readyEvery
// (what TestReadinessSeesALostBrokerInOneRound drives by hand).
func TestReadinessBoundIsTheDocumented(t *testing.T) {
	if readyEvery+readyTimeout > documentedReadyBound {
		t.Fatalf("a round every %s, each check bounded to %s: a lost broker may show only after %s, docs/http.md says %s",
			readyEvery, readyTimeout, readyEvery+readyTimeout, documentedReadyBound)
	}
	s := newService(t, kafkatest.Brokers(t))
	every := make(chan time.Duration, 1)
	s.tick = func(d time.Duration) (<-chan time.Time, func()) {
		every <- d
		return nil, func() {}
	}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	if d := <-every; d != readyEvery {
		t.Fatalf("the readiness rounds tick every %s, want readyEvery (%s)", d, readyEvery)
	}
}

// TestReadinessSeesALostBrokerInOneRound stops and pauses a dedicated broker, twice, under a
// bridge whose readiness rounds the test ticks one at a time: the first round after the loss
// says not ready (an answer from the client's metadata cache would still say ready), and the
// round with the broker frozen ends by the check's own bound (readyTimeout), not the client's.
// With the round interval above, that is the documented bound.
func TestReadinessSeesALostBrokerInOneRound(t *testing.T) {
	broker := kafkatest.StartBroker(t)
	s := newService(t, []string{broker.Addr()})
	ticks := make(chan time.Time)
	s.tick = func(time.Duration) (<-chan time.Time, func()) { return ticks, func() {} }
	if err := s.Listen(); err != nil { // runs the first round before it returns
		t.Fatal(err)
	}
	round := func() ingress.Readiness {
		t.Helper()
		prev := s.ready.Load()
		ticks <- time.Now()
		testkit.Eventually(t, time.Minute, "the readiness round ends", func() bool { return s.ready.Load() != prev })
		return s.isReady()
	}
	readyAgain := func(when string) {
		t.Helper()
		// A restarted broker takes a while to lead its partitions: round after round.
		deadline := time.Now().Add(time.Minute)
		for r := s.isReady(); !r.Ready; r = round() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: still not ready after a minute: %+v", when, r)
			}
		}
	}
	for i := range 2 {
		readyAgain("broker running")
		broker.Stop()
		if r := round(); r.Ready || r.Reason != "kafka unreachable" || strings.Contains(r.Reason, broker.Addr()) {
			t.Fatalf("the first round with the broker stopped: %+v; want not ready, kafka unreachable, without the broker's address", r)
		}
		broker.Start()
		readyAgain("broker restarted")
		broker.Pause()
		r := round()
		broker.Resume()
		if r.Ready || !strings.Contains(r.Detail, context.DeadlineExceeded.Error()) {
			t.Fatalf("the first round with the broker frozen: %+v; want not ready, ended by the check's deadline", r)
		}
		t.Logf("round %d: stop and pause each seen in one round", i+1)
	}
}

// TestReadinessChangeIsLoggedOnce: "readiness changed" is logged when the readiness or its
// reason changes, not at every round.
func TestReadinessChangeIsLoggedOnce(t *testing.T) {
	logs := &testkit.LogBuffer{}
	s := newServiceLogging(t, kafkatest.Brokers(t), slog.New(slog.NewTextHandler(logs, nil)))
	ticks := make(chan time.Time)
	s.tick = func(time.Duration) (<-chan time.Time, func()) { return ticks, func() {} }
	if err := s.Listen(); err != nil { // runs the first round before it returns
		t.Fatal(err)
	}
	changes, last := 1, *s.ready.Load() // the first round's is a change from nothing
	for range 3 {
		prev := s.ready.Load()
		ticks <- time.Now()
		testkit.Eventually(t, time.Minute, "the readiness round ends", func() bool { return s.ready.Load() != prev })
		if r := *s.ready.Load(); r.Ready != last.Ready || r.Reason != last.Reason {
			changes, last = changes+1, r
		}
	}
	if n := strings.Count(logs.String(), "readiness changed"); n != changes {
		t.Errorf("%q logged %d times in four rounds with %d changes:\n%s", "readiness changed", n, changes, logs)
	}
}

// newService builds a bridge on brokers, listening on a free port, shut down at cleanup.
func newService(t *testing.T, brokers []string) *Service {
	t.Helper()
	return newServiceLogging(t, brokers, testkit.Logger(t))
}

func newServiceLogging(t *testing.T, brokers []string, log *slog.Logger) *Service {
	t.Helper()
	cfg := config.Default()
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.Kafka.Brokers = brokers
	cfg.Kafka.TopicPrefix = kafkatest.Prefix(t)
	cfg.Kafka.Partitions = 1
	cfg.Sources = []config.Source{{Name: "codivupload", Provider: "codivupload", Secrets: []string{"s"}}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	s, err := New(t.Context(), cfg, log, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return s
}

// TestShutdownContextIsTheTimeout: a graceful stop is bounded by http.shutdown_timeout
// (TestShutdownTimeout checks that a stuck delivery cannot outlast that bound).
func TestShutdownContextIsTheTimeout(t *testing.T) {
	h := config.Default().HTTP
	h.ShutdownTimeout = config.Duration(2 * time.Second)
	ctx, cancel := shutdownContext(h)
	defer cancel()
	deadline, ok := ctx.Deadline()
	// Only an upper bound: a stalled machine can make the rest smaller, never larger.
	if left := time.Until(deadline); !ok || left > 2*time.Second {
		t.Fatalf("the shutdown's context has a deadline %v (set: %v) from now, want at most http.shutdown_timeout (2s)", left, ok)
	}
}
