package analytics

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/socialbridge/bridge/consumers/analytics/store"
)

// metrics are the consumer's Prometheus metrics, in a registry of its own so that a process
// running the bridge too (bridge dev) has no collisions.
type metrics struct {
	reg         *prometheus.Registry
	records     *prometheus.CounterVec
	batches     *prometheus.CounterVec
	batchTime   prometheus.Histogram
	undecodable prometheus.Counter
	fetchErrors prometheus.Counter
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "analytics_records_total",
			Help: "Records of committed batches: counted, ignored (count nothing, e.g. undecodable) or skipped (counted before).",
		}, []string{"outcome"}),
		batches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "analytics_batches_total",
			Help: "Batch transactions: committed, conflict (a partition moved on; retried) or error (retried).",
		}, []string{"result"}),
		batchTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "analytics_batch_seconds",
			Help:    "Time to write and commit one batch.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
		}),
		undecodable: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "analytics_undecodable_total",
			Help: "Records whose value can never be decoded (logged with topic, partition and offset, then ignored).",
		}),
		fetchErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "analytics_fetch_errors_total",
			Help: "Errors fetching from Kafka (the client retries).",
		}),
	}
	m.reg.MustRegister(m.records, m.batches, m.batchTime, m.undecodable, m.fetchErrors,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) observeBatch(start time.Time, a store.Applied, err error) {
	switch {
	case err == nil:
		m.batches.WithLabelValues("committed").Inc()
		m.batchTime.Observe(time.Since(start).Seconds())
		m.records.WithLabelValues("counted").Add(float64(a.Counted))
		m.records.WithLabelValues("ignored").Add(float64(a.Ignored))
		m.records.WithLabelValues("skipped").Add(float64(a.Skipped))
	case errors.Is(err, store.ErrConflict):
		m.batches.WithLabelValues("conflict").Inc()
	default:
		m.batches.WithLabelValues("error").Inc()
	}
}
