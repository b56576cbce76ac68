package alerts

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kgo"
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

// TestSendMarksOnlyWhatMayBeARepeat: a message is recorded as Sending before its first
// POST and as accepted after it, and goes unmarked; one whose Sending record a start
// found (its first POST's outcome unknown) goes marked as a possible repeat, without
// recording Sending again. A Sending record Kafka does not take stops the send before
// any POST, and says so in the log.
func TestSendMarksOnlyWhatMayBeARepeat(t *testing.T) {
	hook := newFakeWebhook(t, func(map[string]any) (int, string) { return http.StatusOK, "ok" })
	var log bytes.Buffer
	d, _ := testDeliverer(hook.srv.URL, &log)
	type write struct {
		del   Delivery
		posts int // POSTs Slack had when it was written
	}
	var writes []write
	d.write = func(_ context.Context, r *kgo.Record) error {
		var del Delivery
		if err := json.Unmarshal(r.Value, &del); err != nil {
			t.Fatal(err)
		}
		writes = append(writes, write{del, len(hook.got())})
		return nil
	}
	k := Key{"acme", "brand", "x"}
	first := &Alert{ID: "evt_1", Source: "acme", Profile: "brand", Platform: "x"}
	if got := d.send(context.Background(), 0, k, first, Delivery{}, msgAlert, "evt_1"); got != (Delivery{Alert: "evt_1"}) {
		t.Errorf("delivery after the first send: %+v", got)
	}
	want := []write{{Delivery{Sending: "alert:evt_1"}, 0}, {Delivery{Alert: "evt_1"}, 1}}
	if !slices.Equal(writes, want) {
		t.Errorf("records written %+v, want %+v: Sending before the POST, the id after", writes, want)
	}
	if got := hook.got(); len(got) != 1 || strings.Contains(got[0]["text"].(string), "sent again") {
		t.Fatalf("slack got %v: want the alert once, unmarked", got)
	}

	writes = nil
	again := &Alert{ID: "evt_2", Source: "acme", Profile: "brand", Platform: "x"}
	d.send(context.Background(), 0, k, again, Delivery{Alert: "evt_1", Sending: "alert:evt_2"}, msgAlert, "evt_2")
	if want := []write{{Delivery{Alert: "evt_2"}, 2}}; !slices.Equal(writes, want) {
		t.Errorf("records written %+v, want %+v: no Sending again, the id after", writes, want)
	}
	if got := hook.got(); len(got) != 2 || !strings.Contains(got[1]["text"].(string), "sent again") {
		t.Fatalf("slack got %v: want the second alert marked as a possible repeat", got)
	}
	if strings.Contains(log.String(), "not recorded") {
		t.Errorf("a delivery recorded is logged as not recorded: %s", log.String())
	}

	d.write = func(context.Context, *kgo.Record) error { return backoff.Permanent(errors.New("kafka is down")) }
	third := &Alert{ID: "evt_3", Source: "acme", Profile: "brand", Platform: "x"}
	if got := d.send(context.Background(), 0, k, third, Delivery{Alert: "evt_2"}, msgAlert, "evt_3"); got.Alert != "evt_2" {
		t.Errorf("delivery after a Sending record Kafka refused: %+v", got)
	}
	if n := len(hook.got()); n != 2 || !strings.Contains(log.String(), "delivery not recorded") || !strings.Contains(log.String(), "kafka is down") {
		t.Errorf("a Sending record Kafka refused: %d POSTs (want none more), log %q", n-2, log.String())
	}
}
