package analytics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/socialbridge/bridge/consumers"
	"github.com/socialbridge/bridge/consumers/analytics/store"
)

// metrics are the consumer's Prometheus metrics, in a registry of its own so that a process
// running the bridge too (bridge dev) has no collisions: the shared runtime's
// (bridge_consumer_*, labelled with the group) and the batches' own.
type metrics struct {
	reg          *prometheus.Registry
	shared       *consumers.Metrics
	batchTime    prometheus.Histogram
	batchRecords prometheus.Histogram
	undecodable  prometheus.Counter
	fetchErrors  prometheus.Counter
	pending      prometheus.Gauge
}

func newMetrics(group string) *metrics {
	reg := consumers.NewRegistry()
	m := &metrics{
		reg:    reg,
		shared: consumers.NewMetrics(reg, group),
		batchTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "analytics_batch_seconds",
			Help:    "Time to write and commit one batch.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
		}),
		batchRecords: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "analytics_batch_records",
			Help:    "Records in one committed batch: what arrived while the last one was written.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 10),
		}),
		undecodable: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "analytics_undecodable_total",
			Help: "Records whose value can never be decoded (logged with topic, partition and offset, then ignored).",
		}),
		fetchErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "analytics_fetch_errors_total",
			Help: "Errors fetching from Kafka (the client retries).",
		}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "analytics_records_pending",
			Help: "Records polled and decoded, neither committed to the database yet nor dropped (their partition revoked or lost): how far the writer is behind.",
		}),
	}
	reg.MustRegister(m.batchTime, m.batchRecords, m.undecodable, m.fetchErrors, m.pending)
	return m
}

// observeBatch counts a batch's transaction (committed or aborted) and, once committed, its
// records by topic and outcome: counted, ignored (count nothing, e.g. undecodable) or
// skipped (counted before).
func (m *metrics) observeBatch(start time.Time, records int, a store.Applied, err error) {
	if err != nil {
		m.shared.Transactions.WithLabelValues("aborted").Inc()
		return
	}
	m.shared.Transactions.WithLabelValues("committed").Inc()
	m.batchTime.Observe(time.Since(start).Seconds())
	m.batchRecords.Observe(float64(records))
	for topic, t := range a.Topics {
		m.shared.Processed.WithLabelValues(topic, "counted").Add(float64(t.Counted))
		m.shared.Processed.WithLabelValues(topic, "ignored").Add(float64(t.Ignored))
		m.shared.Processed.WithLabelValues(topic, "skipped").Add(float64(t.Skipped))
	}
}
