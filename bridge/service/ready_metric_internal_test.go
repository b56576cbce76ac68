package service

import (
	"testing"
	"time"

	"github.com/socialbridge/bridge/internal/kafkatest"
	"github.com/socialbridge/bridge/internal/testkit"
)

// TestReadyGaugeIsReadyz: bridge_ready is 1 exactly when /readyz answers 200: 0 before the
// first readiness round, 1 once a round passed, 0 again while draining.
func TestReadyGaugeIsReadyz(t *testing.T) {
	s := newService(t, kafkatest.Brokers(t))
	ticks := make(chan time.Time)
	s.tick = func(time.Duration) (<-chan time.Time, func()) { return ticks, func() {} }
	if got := readyGauge(t, s); got != 0 {
		t.Fatalf("bridge_ready before the first round: %v, want 0", got)
	}
	if err := s.Listen(); err != nil { // runs the first round before it returns
		t.Fatal(err)
	}
	testkit.Eventually(t, time.Minute, "the bridge is ready", func() bool {
		if s.isReady().Ready {
			return true
		}
		prev := s.ready.Load()
		ticks <- time.Now()
		testkit.Eventually(t, time.Minute, "the readiness round ends", func() bool { return s.ready.Load() != prev })
		return s.isReady().Ready
	})
	if got := readyGauge(t, s); got != 1 {
		t.Fatalf("bridge_ready while /readyz answers 200: %v, want 1", got)
	}
	s.draining.Store(true)
	if got := readyGauge(t, s); got != 0 {
		t.Fatalf("bridge_ready while draining: %v, want 0", got)
	}
}

// readyGauge gathers bridge_ready from the bridge's registry.
func readyGauge(t *testing.T, s *Service) float64 {
	t.Helper()
	mfs, err := s.metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "bridge_ready" {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatal("the registry has no bridge_ready")
	return 0
}
