package consumers

import (
	"context"
	"log/slog"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Metrics are the Prometheus metrics every group exports, labelled with its group name.
type Metrics struct {
	// Processed counts records handled, by topic read and outcome (e.g. done, moved,
	// dead_lettered, suppressed).
	Processed *prometheus.CounterVec
	// Moved counts records produced onward (to a retry topic, an internal topic), by topic.
	Moved *prometheus.CounterVec
	// DeadLettered counts records sent to a dead-letter topic, by reason class, when their
	// batch commits (Tx.CountDeadLettered).
	DeadLettered *prometheus.CounterVec
	// Lag is the group's committed lag per partition this member owns: end offset minus
	// committed offset.
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

// NewMetrics registers the metrics of group with reg. The series of deadLetterReasons, the
// reasons the group dead-letters for, start at 0: a counter series that first appears at 1
// is not counted by increase() over a window that starts before it, so an alert on the
// first dead letter would fire only from the second.
func NewMetrics(reg prometheus.Registerer, group string, deadLetterReasons ...string) *Metrics {
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
	for _, r := range deadLetterReasons {
		m.DeadLettered.WithLabelValues(r)
	}
	reg.MustRegister(m.Processed, m.Moved, m.DeadLettered, m.Lag, m.Effect, m.Transactions)
	return m
}

// WatchLag sets m.Lag for the partitions that cl, a member of group, owns, from the
// group's committed offsets and the partitions' end offsets, every interval until ctx
// ends; the series of a partition it no longer owns is deleted, so that the members of a
// group export each partition once. Committed offsets, not the position of the poll,
// because they are what a restart resumes from.
func (m *Metrics) WatchLag(ctx context.Context, cl *kgo.Client, group string, every time.Duration, log *slog.Logger) {
	adm := kadm.NewClient(cl)
	t := time.NewTicker(every)
	defer t.Stop()
	var exported map[lagSeries]bool
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		lag, err := groupLag(ctx, adm, group)
		if err != nil {
			log.Debug("lag not measured", "err", err)
			continue
		}
		member, _ := cl.GroupMetadata()
		exported = m.setLag(lag, member, exported)
	}
}

// groupLag measures group's lag. kadm reports a failed describe or offset fetch of the group
// beside no error, with no lag: measured so, every partition would look no longer owned.
func groupLag(ctx context.Context, adm *kadm.Client, group string) (kadm.GroupLag, error) {
	lags, err := adm.Lag(ctx, group)
	if err != nil {
		return nil, err
	}
	l := lags[group]
	return l.Lag, l.Error()
}

// lagSeries is the labels of one series of Metrics.Lag.
type lagSeries struct{ topic, partition string }

// setLag sets the lag of the partitions member owns in lag, deletes the series in before
// that it no longer owns, and returns the series it exports now. A partition it owns whose
// lag could not be measured keeps its last value.
func (m *Metrics) setLag(lag kadm.GroupLag, member string, before map[lagSeries]bool) map[lagSeries]bool {
	now := map[lagSeries]bool{}
	for _, l := range lag.Sorted() {
		if l.Member == nil || l.Member.MemberID != member || member == "" {
			continue
		}
		s := lagSeries{l.Topic, strconv.Itoa(int(l.Partition))}
		if l.Err != nil {
			now[s] = before[s]
			continue
		}
		m.Lag.WithLabelValues(s.topic, s.partition).Set(float64(l.Lag))
		now[s] = true
	}
	for s := range before {
		if !now[s] {
			m.Lag.DeleteLabelValues(s.topic, s.partition)
		}
	}
	return now
}
