package alerts

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/consumers"
)

// TestSweepsEachSixteenthOfForgetAfter: the handler the group runs looks for forgettable
// keys once its partition's stream time has moved a sixteenth of forget_after since the
// last look, and not before (the model test sweeps at every batch, so it cannot see this).
func TestSweepsEachSixteenthOfForgetAfter(t *testing.T) {
	cfg := config.Default()
	cfg.Consumers.Alerts.ForgetAfter = config.Duration(16 * time.Hour)
	reg := prometheus.NewRegistry()
	h := newHandler(cfg, 1, nil, consumers.NewMetrics(reg, "g"), newAlertsMetrics(reg, "g", &parts{}), &parts{},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	t0 := time.Date(2026, 5, 8, 12, 0, 0, 0, time.UTC)
	k := Key{Source: "acme", Profile: "settled", Platform: "x"}
	swept := t0.Add(20 * time.Hour) // the key, last published at t0, is forgettable from t0+16h
	for _, c := range []struct {
		after  time.Duration // of stream time since the last sweep
		sweeps bool
	}{{time.Hour - time.Nanosecond, false}, {time.Hour, true}} {
		p := newPartition(0)
		p.published[k] = Published{ID: "p1", At: t0}
		p.stream, p.swept = swept, swept
		ch := &changes{keys: map[Key]*entry{}, stream: swept.Add(c.after)}
		h.sweep(p, ch)
		if e := ch.keys[k]; (e != nil && e.forgotten) != c.sweeps || !ch.swept.IsZero() != c.sweeps {
			t.Errorf("%s after the last sweep: key %+v, swept at %v; want swept %v", c.after, e, ch.swept, c.sweeps)
		}
	}
}

// TestSweepForgetsAKeyNewInTheBatch: a key the batch decided on first, and already
// forgettable (a late publish, forget_after older than its partition's stream time), is
// forgotten by the batch's own sweep: nothing of it is written to the state topic.
func TestSweepForgetsAKeyNewInTheBatch(t *testing.T) {
	cfg := config.Default()
	cfg.Consumers.Alerts.ForgetAfter = config.Duration(time.Hour)
	reg := prometheus.NewRegistry()
	h := newHandler(cfg, 1, nil, consumers.NewMetrics(reg, "g"), newAlertsMetrics(reg, "g", &parts{}), &parts{},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	t0 := time.Date(2026, 5, 8, 12, 0, 0, 0, time.UTC)
	p := newPartition(0)
	p.stream = t0.Add(2 * time.Hour)
	late := Key{Source: "acme", Profile: "late", Platform: "x"}
	c := &changes{keys: map[Key]*entry{late: {last: Published{ID: "p1", At: t0}, lastSet: true}}, stream: p.stream}
	h.sweep(p, c)
	if e := c.keys[late]; !e.forgotten {
		t.Errorf("the late key's entry after the sweep: %+v, want forgotten", e)
	}
	if rs := h.records(p, c); len(rs) != 0 {
		t.Errorf("%d state records written for a key forgotten in its first batch, want none", len(rs))
	}
}
