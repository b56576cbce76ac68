package alerts

import (
	"bytes"
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// TestBackoffDoublesFromHalfASecondToAMinute: the tries of a message Slack did not take
// wait from half a second, doubling, up to a minute, and never stop (each wait drawn
// within ±50 % of its step). The model test and the other tests of delivery wait by
// backoffs of their own, so only this one sees the group's.
func TestBackoffDoublesFromHalfASecondToAMinute(t *testing.T) {
	b := defaultBackoff()
	step := 500 * time.Millisecond
	for i := range 30 {
		got := b.NextBackOff()
		if got == backoff.Stop || got < step/2 || got > step*3/2+time.Nanosecond {
			t.Fatalf("wait %d: %s, want %s ± 50 %%", i+1, got, step)
		}
		step = min(2*step, time.Minute)
	}
}

// TestEachPostIsTimedByOutcome: bridge_consumer_effect_seconds has one sample per POST to
// Slack, under ok when Slack took it and failed when not.
func TestEachPostIsTimedByOutcome(t *testing.T) {
	var n atomic.Int32
	hook := newFakeWebhook(t, func(map[string]any) (int, string) {
		if n.Add(1) <= 2 {
			return http.StatusServiceUnavailable, "busy"
		}
		return http.StatusOK, "ok"
	})
	var log bytes.Buffer
	d, _ := testDeliverer(hook.srv.URL, &log)
	a := &Alert{ID: "evt_1", Source: "acme", Profile: "brand", Platform: "x"}
	if !d.post(context.Background(), Key{"acme", "brand", "x"}, msgAlert, a.ID, func(r bool) message { return alertMessage(a, r) }, false) {
		t.Fatal("post: not done")
	}
	for outcome, want := range map[string]uint64{"ok": 1, "failed": 2} {
		var m dto.Metric
		if err := d.metrics.Effect.WithLabelValues(outcome).(prometheus.Metric).Write(&m); err != nil {
			t.Fatal(err)
		}
		if got := m.GetHistogram().GetSampleCount(); got != want {
			t.Errorf("effect samples %s: %d, want %d (two 503s, then 200)", outcome, got, want)
		}
	}
}
