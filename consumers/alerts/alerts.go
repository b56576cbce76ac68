package alerts

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/consumers"
	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/internal/kafkaconn"
	"github.com/socialbridge/bridge/internal/telemetry"
	"github.com/socialbridge/bridge/internal/topics"
	"github.com/socialbridge/bridge/schemas"
)

// tracerScope is the instrumentation scope of the group's spans.
const tracerScope = "github.com/socialbridge/bridge/consumers/alerts"

const (
	maxRecords   = 20000            // per batch, one transaction: its commit is a small part of its time
	startTimeout = 30 * time.Second // bounds making sure of the topics
)

// Options are what a caller may set of New beside the configuration; the zero value is
// what `bridge consume alerts` runs.
type Options struct {
	// Registry holds the group's metrics (tests read them there); nil is a new one.
	Registry *prometheus.Registry
}

// Run runs the alerts group configured by cfg until ctx ends, then stops gracefully: the
// batch in hand is committed, the POSTs in flight are finished and recorded, and the
// member leaves the group.
func Run(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	g, err := New(ctx, cfg, log, Options{})
	if err != nil {
		return err
	}
	return g.Run(ctx)
}

// Group is a member of the alerts group, ready to Run.
type Group struct {
	member *consumers.Member
	writer *kgo.Client // of the keyed and state topics, closed by Run
	owned  *parts
}

// New makes sure of the group's topics (the keyed and state topics co-partitioned with
// the events) within ctx and builds the member; nothing is consumed until Run. Run it, or
// the client it holds stays open.
func New(ctx context.Context, cfg config.Config, log *slog.Logger, o Options) (*Group, error) {
	if err := cfg.RequireAlerts(); err != nil {
		return nil, err
	}
	dec, err := consumers.NewReader(cfg.SchemaRegistry)
	if err != nil {
		return nil, err
	}
	ac, prefix := cfg.Consumers.Alerts, cfg.Kafka.TopicPrefix
	log = log.With("group", ac.Group)
	writer, err := kgo.NewClient(append(kafkaconn.Options(cfg.Kafka), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	n, err := coPartitioned(ctx, writer, cfg.Kafka, log, stateTopics(prefix), prefix)
	if err != nil {
		writer.Close()
		return nil, err
	}
	reg := o.Registry
	if reg == nil {
		reg = consumers.NewRegistry()
	}
	metrics := consumers.NewMetrics(reg, ac.Group, reasonUndecodable)
	owned := &parts{}
	h := newHandler(cfg, n, dec, metrics, newAlertsMetrics(reg, ac.Group, owned), owned, log)
	h.deliver.slack = newSlack(ac.SlackWebhookURL, ac.SlackTimeout.D(), ac.SlackRate)
	h.deliver.write = produceSync(writer)
	m := &consumers.Member{
		Kafka: cfg.Kafka, Config: ac.Member, Group: ac.Group, Reads: []string{event.Topic(prefix, event.PostTokenExpired), event.Topic(prefix, event.PostPublished), Keyed(prefix)},
		Handler: h, Holds: h.holds, Metrics: metrics, Registry: reg, Log: log, MaxRecords: maxRecords, // Topics: coPartitioned made sure of them
		Gone: func(_ *kgo.Client, ps map[string][]int32) { owned.drop(ps[Keyed(prefix)], false) },
		Options: []kgo.Opt{
			kgo.RecordPartitioner(partitioner{manual: map[string]bool{Keyed(prefix): true, State(prefix): true}}),
			kgo.AdjustFetchOffsetsFn(func(ctx context.Context, offsets map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
				return offsets, h.assigned(ctx, cfg.Kafka, writer, offsets[Keyed(prefix)])
			}),
		},
	}
	return &Group{member: m, writer: writer, owned: owned}, nil
}

// Run consumes until ctx ends, then stops gracefully (see the package's Run).
func (g *Group) Run(ctx context.Context) error {
	defer g.writer.Close()
	defer g.owned.drop(nil, true)
	return g.member.Run(ctx)
}

// topics are the topics the group reads and writes.
func stateTopics(prefix string) []topics.Topic {
	return []topics.Topic{{Name: event.Topic(prefix, event.PostTokenExpired)}, {Name: event.Topic(prefix, event.PostPublished)}, {Name: Keyed(prefix)},
		{Name: State(prefix), Compact: true}, {Name: DLQ(prefix)}}
}

// newHandler is the group's handler, without its Slack and its delivery writer.
func newHandler(cfg config.Config, keyedN int, dec *schemas.Reader, metrics *consumers.Metrics, am alertsMetrics, owned *parts, log *slog.Logger) *handler {
	ac, prefix := cfg.Consumers.Alerts, cfg.Kafka.TopicPrefix
	return &handler{
		keyed: Keyed(prefix), state: State(prefix), dlq: DLQ(prefix), cooldown: ac.Cooldown.D(),
		forgetAfter: ac.ForgetAfter.D(), sweepEvery: ac.ForgetAfter.D() / sweepsPerHorizon,
		dec: dec, holds: &consumers.Holds{}, metrics: metrics, log: log, parts: owned, loads: am.loads,
		keyedN: keyedN, hash: kgo.StickyKeyPartitioner(nil).ForTopic(Keyed(prefix)), group: ac.Group, tracer: telemetry.Tracer(tracerScope),
		deliver: &deliverer{topic: State(prefix), metrics: metrics, sent: am.sent, gaveUp: am.gaveUp, log: log, backoff: defaultBackoff},
	}
}

// sweepsPerHorizon is how often, per forget_after of stream time, a partition's keys are
// looked at for the forgettable: a settled key's state lives at most 1/16 longer.
const sweepsPerHorizon = 16

// alertsMetrics are the group's own metrics, beside consumers.Metrics.
type alertsMetrics struct {
	sent, gaveUp *prometheus.CounterVec
	loads        prometheus.Histogram
}

func newAlertsMetrics(reg prometheus.Registerer, group string, owned *parts) alertsMetrics {
	l := prometheus.Labels{"group": group}
	m := alertsMetrics{
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bridge_alerts_sent_total",
			Help: "Slack messages accepted, by kind (alert, resolution).", ConstLabels: l}, []string{"kind"}),
		gaveUp: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bridge_alerts_given_up_total",
			Help: "Slack messages given up, by kind: Slack refused them with blocks and as text only.", ConstLabels: l}, []string{"kind"}),
		loads: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "bridge_alerts_state_load_seconds",
			Help: "Time to read the state of newly assigned partitions.", ConstLabels: l, Buckets: prometheus.ExponentialBuckets(0.01, 2.5, 10)}),
	}
	keys := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "bridge_alerts_state_keys",
		Help: "Keys (source, profile, platform) whose state this member holds.", ConstLabels: l}, func() float64 { return float64(owned.keys()) })
	for _, kind := range []string{msgAlert, msgResolution} { // series from 0: see consumers.NewMetrics
		m.sent.WithLabelValues(kind)
		m.gaveUp.WithLabelValues(kind)
	}
	reg.MustRegister(m.sent, m.gaveUp, m.loads, keys)
	return m
}

// assigned loads the state of newly assigned keyed partitions, before any of their records
// is fetched, and starts the workers of the messages they still owe.
func (h *handler) assigned(ctx context.Context, k config.Kafka, writer *kgo.Client, offsets map[int32]kgo.Offset) error {
	ids := make([]int32, 0, len(offsets))
	for id := range offsets {
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		return nil
	}
	start := time.Now()
	loaded, records, err := load(ctx, k, writer, h.state, ids)
	if err != nil {
		h.log.Error("state not loaded", "partitions", ids, "err", err)
		return err
	}
	h.loads.Observe(time.Since(start).Seconds())
	keys := h.install(loaded)
	h.log.Info("state loaded", "partitions", ids, "records", records, "keys", keys, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// install makes loaded partitions owned and starts the workers of the messages they owe;
// it returns how many keys they hold.
func (h *handler) install(loaded map[int32]*partition) int {
	h.parts.add(loaded)
	keys := 0
	for _, p := range loaded {
		p.mu.Lock()
		for key := range p.alerts {
			h.deliver.kick(p, key)
		}
		p.mu.Unlock()
		keys += p.keys()
	}
	return keys
}

// coPartitioned makes sure the topics exist and returns the partitions of the keyed topic,
// which the state topic must equal: a key's records and state share a partition number.
func coPartitioned(ctx context.Context, cl *kgo.Client, k config.Kafka, log *slog.Logger, ts []topics.Topic, prefix string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	if err := topics.Ensure(ctx, cl, k, log, ts...); err != nil {
		return 0, fmt.Errorf("kafka at %v: %w", k.Brokers, err)
	}
	n, err := topics.Partitions(ctx, cl, Keyed(prefix))
	if err != nil {
		return 0, err
	}
	m, err := topics.Partitions(ctx, cl, State(prefix))
	if err != nil {
		return 0, err
	}
	if n != m {
		return 0, fmt.Errorf("%s has %d partitions and %s %d: they must be equal (a key's state lives in the partition of its records)", Keyed(prefix), n, State(prefix), m)
	}
	return n, nil
}

// partitioner sends records of the manual topics to the partition they name, and others by
// the hash of their key.
type partitioner struct{ manual map[string]bool }

func (p partitioner) ForTopic(t string) kgo.TopicPartitioner {
	if p.manual[t] {
		return kgo.ManualPartitioner().ForTopic(t)
	}
	return kgo.StickyKeyPartitioner(nil).ForTopic(t)
}
