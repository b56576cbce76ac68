package consumers

import (
	"context"
	"log/slog"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/twmb/franz-go/pkg/kadm"
)

// Metrics are the Prometheus metrics every group exports, labelled with its group name.
type Metrics struct {
	// Processed counts records handled, by topic read and outcome (e.g. done, moved,
	// dead_lettered, suppressed).
	Processed *prometheus.CounterVec
	// Moved counts records produced onward (to a retry topic, an internal topic), by topic.
	Moved *prometheus.CounterVec
	// DeadLettered counts records sent to a dead-letter topic, by reason class.
	DeadLettered *prometheus.CounterVec
	// Lag is the group's committed lag per partition: end offset minus committed offset.
	Lag *prometheus.GaugeVec
	// Effect is the latency of each effect (an HTTP call), by outcome.
	Effect *prometheus.HistogramVec
	// Transactions counts ended transactions, by outcome (committed, aborted).
	Transactions *prometheus.CounterVec
}

// NewRegistry returns a Prometheus registry with the Go runtime and process collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// NewMetrics registers the metrics of group with reg.
func NewMetrics(reg prometheus.Registerer, group string) *Metrics {
	l := prometheus.Labels{"group": group}
	m := &Metrics{
		Processed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bridge_consumer_processed_total",
			Help: "Records handled, by topic and outcome.", ConstLabels: l}, []string{"topic", "outcome"}),
		Moved: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bridge_consumer_moved_total",
			Help: "Records moved onward in a transaction, by destination topic.", ConstLabels: l}, []string{"topic"}),
		DeadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bridge_consumer_dead_lettered_total",
			Help: "Records sent to the dead-letter topic, by reason.", ConstLabels: l}, []string{"reason"}),
		Lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "bridge_consumer_lag",
			Help: "Records not yet committed by the group: end offset minus committed offset.", ConstLabels: l}, []string{"topic", "partition"}),
		Effect: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "bridge_consumer_effect_seconds",
			Help: "Latency of each effect (an HTTP call), by outcome.", ConstLabels: l,
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12)}, []string{"outcome"}),
		Transactions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bridge_consumer_transactions_total",
			Help: "Transactions ended, by outcome.", ConstLabels: l}, []string{"outcome"}),
	}
	reg.MustRegister(m.Processed, m.Moved, m.DeadLettered, m.Lag, m.Effect, m.Transactions)
	return m
}

// WatchLag sets m.Lag from the group's committed offsets and the partitions' end offsets
// every interval until ctx ends. Committed offsets, not the position of the poll, because
// they are what a restart resumes from.
func (m *Metrics) WatchLag(ctx context.Context, adm *kadm.Client, group string, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		lags, err := adm.Lag(ctx, group)
		if err != nil {
			log.Debug("lag not measured", "err", err)
			continue
		}
		for _, l := range lags[group].Lag.Sorted() {
			if l.Err == nil {
				m.Lag.WithLabelValues(l.Topic, strconv.Itoa(int(l.Partition))).Set(float64(l.Lag))
			}
		}
	}
}
