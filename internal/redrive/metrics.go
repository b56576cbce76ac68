package redrive

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/event"
)

// Metrics of a topic of set-aside records (the dead-letter topic, the quarantine) for a
// long-running process to export: how many it holds, how many an operator has dealt with
// (redriven, replayed), how many wait, and how long the oldest has waited. They are read
// from Kafka when scraped, at most every refreshEvery, each time only what was added since
// the last read: the commands that redrive and replay run once and export nothing.
const refreshEvery = 30 * time.Second

// refreshTimeout bounds one refresh, so that a scrape is never held long by Kafka.
const refreshTimeout = 10 * time.Second

// NewDLQMetrics returns the collector of the dead-letter topic's metrics,
// bridge_dlq_records, bridge_dlq_redriven_records, bridge_dlq_pending_records and
// bridge_dlq_oldest_pending_age_seconds, labelled with the topic, and
// bridge_dlq_read_errors_total.
func NewDLQMetrics(k config.Kafka, log *slog.Logger) prometheus.Collector {
	return newWatch(k, event.DLQTopic(k.TopicPrefix), RedrivenTopic(k.TopicPrefix), "bridge_dlq", "redriven", log)
}

// NewQuarantineMetrics returns the collector of the quarantine topic's metrics,
// bridge_quarantine_records, bridge_quarantine_replayed_records,
// bridge_quarantine_pending_records and bridge_quarantine_oldest_pending_age_seconds,
// labelled with the topic, and bridge_quarantine_read_errors_total.
func NewQuarantineMetrics(k config.Kafka, log *slog.Logger) prometheus.Collector {
	return newWatch(k, event.QuarantineTopic(k.TopicPrefix), ReplayedTopic(k.TopicPrefix), "bridge_quarantine", "replayed", log)
}

// watch keeps, from one refresh to the next, where each record of the topic is, when it
// came, and which are marked; the read of each topic resumes where the last one ended.
type watch struct {
	k                   config.Kafka
	topic, marksTopic   string
	log                 *slog.Logger
	records, done, wait *prometheus.Desc
	oldest              *prometheus.Desc
	errors              prometheus.Counter
	now                 func() time.Time
	mu                  sync.Mutex
	id                  kadm.TopicID
	at, marksAt         map[tp]int64
	added               map[mark]time.Time
	marked              map[mark]bool
	attempted           time.Time
}

func newWatch(k config.Kafka, topic, marksTopic, ns, doneWord string, log *slog.Logger) *watch {
	l := []string{"topic"}
	return &watch{
		k: k, topic: topic, marksTopic: marksTopic, log: log, now: time.Now,
		records: prometheus.NewDesc(ns+"_records", "Records in the topic.", l, nil),
		done:    prometheus.NewDesc(ns+"_"+doneWord+"_records", "Records in the topic that were "+doneWord+".", l, nil),
		wait:    prometheus.NewDesc(ns+"_pending_records", "Records in the topic not "+doneWord+": waiting for an operator.", l, nil),
		oldest: prometheus.NewDesc(ns+"_oldest_pending_age_seconds",
			"How long the oldest record not "+doneWord+" has been in the topic; 0 when none waits.", l, nil),
		errors: prometheus.NewCounter(prometheus.CounterOpts{Name: ns + "_read_errors_total",
			Help: "Reads of the topic, for these metrics, that failed; the metrics keep their last values."}),
		at: map[tp]int64{}, marksAt: map[tp]int64{}, added: map[mark]time.Time{}, marked: map[mark]bool{},
	}
}

func (w *watch) Describe(ch chan<- *prometheus.Desc) {
	ch <- w.records
	ch <- w.done
	ch <- w.wait
	ch <- w.oldest
	w.errors.Describe(ch)
}

func (w *watch) Collect(ch chan<- prometheus.Metric) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.now()
	if now.Sub(w.attempted) >= refreshEvery {
		w.attempted = now
		ctx, cancel := context.WithTimeout(context.Background(), refreshTimeout)
		if err := w.refresh(ctx); err != nil {
			w.errors.Inc()
			w.log.Warn("reading the topic for its metrics failed", "topic", w.topic, "err", err)
		}
		cancel()
	}
	done, oldest := 0, now
	for m, t := range w.added {
		if w.marked[m] {
			done++
		} else if t.Before(oldest) {
			oldest = t
		}
	}
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, w.topic)
	}
	gauge(w.records, float64(len(w.added)))
	gauge(w.done, float64(done))
	gauge(w.wait, float64(len(w.added)-done))
	gauge(w.oldest, now.Sub(oldest).Seconds())
	w.errors.Collect(ch)
}

// refresh reads what the topic and its marks topic got since the last refresh, and forgets
// the records retention has deleted. A topic recreated under the same name starts over.
func (w *watch) refresh(ctx context.Context) error {
	c, err := dial(w.k)
	if err != nil {
		return err
	}
	defer c.Close()
	id, ok, err := c.topicID(ctx, w.topic)
	if err != nil {
		return err
	}
	if !ok || id != w.id {
		w.id, w.at, w.marksAt, w.added, w.marked = id, map[tp]int64{}, map[tp]int64{}, map[mark]time.Time{}, map[mark]bool{}
	}
	if !ok {
		return nil
	}
	if err := w.readOn(ctx, c, w.topic, w.at, func(r *kgo.Record) {
		w.added[mark{r.Partition, r.Offset}] = r.Timestamp
	}); err != nil {
		return err
	}
	if err := w.readOn(ctx, c, w.marksTopic, w.marksAt, func(r *kgo.Record) {
		if src, m, ok := parseMarkKey(r.Key); ok && src == hexID(w.id) {
			w.marked[m] = r.Value != nil
		}
	}); err != nil {
		return err
	}
	return w.forgetDeleted(ctx, c)
}

// forgetDeleted forgets the records, and their marks, below their partition's first offset:
// retention deleted them.
func (w *watch) forgetDeleted(ctx context.Context, c *cluster) error {
	starts, err := c.adm.ListStartOffsets(ctx, w.topic)
	if err != nil {
		return err
	}
	gone := func(m mark) bool {
		o, ok := starts.Lookup(w.topic, m.p)
		return ok && o.Err == nil && m.offset < o.Offset
	}
	for m := range w.added {
		if gone(m) {
			delete(w.added, m)
		}
	}
	for m := range w.marked {
		if gone(m) {
			delete(w.marked, m)
		}
	}
	return nil
}

// readOn reads topic's committed records from where at says each partition was left, up
// to the end, and moves at on.
func (w *watch) readOn(ctx context.Context, c *cluster, topic string, at map[tp]int64, keep func(*kgo.Record)) error {
	ss, err := spans(ctx, c.adm, time.Time{}, topic)
	if err != nil {
		return err
	}
	for k, s := range ss {
		if s.start = max(s.start, at[k]); s.start >= s.end {
			delete(ss, k)
		} else {
			ss[k] = s
		}
	}
	resume, err := readCommitted(ctx, c.opts, ss, func(r *kgo.Record) {
		if !r.Attrs.IsControl() {
			keep(r)
		}
	})
	for k, o := range resume {
		at[k] = o
	}
	return err
}
