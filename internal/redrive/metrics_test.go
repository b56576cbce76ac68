package redrive

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/internal/kafkatest"
)

// gather returns the value of each metric of w, by name.
func gather(t *testing.T, w *watch) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(w)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		m := mf.GetMetric()[0]
		if g := m.GetGauge(); g != nil {
			out[mf.GetName()] = g.GetValue()
		} else {
			out[mf.GetName()] = m.GetCounter().GetValue()
		}
	}
	return out
}

// TestDLQMetrics: the gauges count the records of the dead-letter topic, those redriven and
// those waiting, and the age of the oldest waiting; a scrape within refreshEvery of the
// last reads nothing; later ones see what was added or redriven since, and forget what
// retention deleted.
func TestDLQMetrics(t *testing.T) {
	brokers, prefix := kafkatest.Brokers(t), kafkatest.Prefix(t)
	seeded := seedDLQ(t, brokers, prefix, []string{"evt_a", "evt_b", "evt_c"}, []string{"timeout", "timeout", "timeout"})
	now := time.Now()
	w := NewDLQMetrics(testConfig(t, brokers, prefix).Kafka, discardLog()).(*watch)
	w.now = func() time.Time { return now }
	oldestAge := now.Sub(seeded[0].Timestamp).Seconds() // evt_a, the first written
	expect := func(records, redriven, pending float64, oldest float64) {
		t.Helper()
		m := gather(t, w)
		if m["bridge_dlq_records"] != records || m["bridge_dlq_redriven_records"] != redriven || m["bridge_dlq_pending_records"] != pending ||
			math.Abs(m["bridge_dlq_oldest_pending_age_seconds"]-oldest) > 0.01 || m["bridge_dlq_read_errors_total"] != 0 {
			t.Errorf("metrics %v; want %v records, %v redriven, %v pending, oldest %.2fs", m, records, redriven, pending, oldest)
		}
	}
	expect(3, 0, 3, oldestAge)

	if _, _, err := newTestDLQ(t, brokers, prefix).Redrive(context.Background(), Filter{IDs: []string{"evt_a"}}, false); err != nil {
		t.Fatal(err)
	}
	seedDLQ(t, brokers, prefix, []string{"evt_d"}, []string{"timeout"})
	expect(3, 0, 3, oldestAge) // within refreshEvery: not read again
	now = now.Add(refreshEvery)
	oldestAge = now.Sub(seeded[1].Timestamp).Seconds() // evt_a redriven: evt_b is the oldest waiting
	expect(4, 1, 3, oldestAge)

	ctx := context.Background()
	var del kadm.Offsets
	del.Add(kadm.Offset{Topic: event.DLQTopic(prefix), Partition: 1, At: 1}) // evt_b, the first of partition 1
	if _, err := kadm.NewClient(client(t, brokers)).DeleteRecords(ctx, del); err != nil {
		t.Fatal(err)
	}
	now = now.Add(refreshEvery)
	oldestAge = now.Sub(seeded[2].Timestamp).Seconds()
	expect(3, 1, 2, oldestAge)
}

// TestMetricsReadErrors: a cluster that cannot be reached counts a read error, and the
// gauges keep their values (none yet).
func TestMetricsReadErrors(t *testing.T) {
	cfg := testConfig(t, []string{"127.0.0.1:1"}, "unreachable.")
	w := NewQuarantineMetrics(cfg.Kafka, discardLog()).(*watch)
	m := gather(t, w)
	if m["bridge_quarantine_read_errors_total"] != 1 || m["bridge_quarantine_records"] != 0 {
		t.Errorf("metrics %v; want one read error and no records", m)
	}
}
