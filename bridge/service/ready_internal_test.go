package service

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/internal/kafkatest"
)

// TestReadinessReachesTheBroker stops and pauses a dedicated broker, several times, under
// a bridge: a check right after must say not ready. An answer from the client's metadata
// cache would still say ready for seconds.
func TestReadinessReachesTheBroker(t *testing.T) {
	broker := kafkatest.StartBroker(t)
	cfg := config.Default()
	cfg.Kafka.Brokers = []string{broker.Addr()}
	cfg.Kafka.TopicPrefix = kafkatest.Prefix(t)
	cfg.Kafka.Partitions = 1
	cfg.Sources = []config.Source{{Name: "codivupload", Provider: "codivupload", Secrets: []string{"s"}}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	s, err := New(t.Context(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())

	ready := func(want bool, when string) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			start := time.Now()
			s.checkReady(t.Context())
			r := s.isReady()
			if r.Ready == want {
				return
			}
			if !want {
				t.Fatalf("%s: a check that took %v says ready", when, time.Since(start))
			}
			if time.Now().After(deadline) { // a restarted broker takes a while to lead its partitions
				t.Fatalf("%s: still not ready after a minute: %+v", when, r)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	for i := range 2 {
		ready(true, "broker running")
		broker.Stop()
		ready(false, "broker stopped")
		if r := s.isReady(); r.Reason != "kafka unreachable" || strings.Contains(r.Reason, broker.Addr()) {
			t.Errorf("reason %q; want kafka unreachable, without the broker's address", r.Reason)
		}
		broker.Start()
		ready(true, "broker restarted")
		broker.Pause()
		ready(false, "broker paused")
		broker.Resume()
		t.Logf("round %d: stop and pause both seen at once", i+1)
	}
}
