package retries

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/consumers"
	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/internal/telemetry"
	"github.com/socialbridge/bridge/internal/topics"
)

// tracerScope is the instrumentation scope of the group's spans.
const tracerScope = "github.com/socialbridge/bridge/consumers/retries"

// recordsPerCall is how many records a batch (one transaction) holds per call in flight:
// enough that the batch's commit is a small part of its time.
const recordsPerCall = 64

// Options are what a caller may set of New beside the configuration; the zero value is
// what `bridge consume retries` runs.
type Options struct {
	// Registry holds the group's metrics; nil is a new one.
	Registry *prometheus.Registry
}

// New returns the member of the retries group configured by cfg, ready to Run. It takes
// ctx as the other groups' New do; it does nothing at start that waits.
func New(_ context.Context, cfg config.Config, log *slog.Logger, o Options) (*consumers.Member, error) {
	if err := cfg.RequireRetries(); err != nil {
		return nil, err
	}
	dec, err := consumers.NewReader(cfg.SchemaRegistry)
	if err != nil {
		return nil, err
	}
	rc := cfg.Consumers.Retries
	prefix := cfg.Kafka.TopicPrefix
	log = log.With("group", rc.Group)
	reg := o.Registry
	if reg == nil {
		reg = consumers.NewRegistry()
	}
	metrics := consumers.NewMetrics(reg, rc.Group, deadLetterReasons...)
	holds := &consumers.Holds{}
	h := &handler{
		prefix: prefix, stage: map[string]int{event.Topic(prefix, event.PostFailed): 0}, action: newAction(rc.Action, rc.Concurrency),
		dec: dec, holds: holds, metrics: metrics, log: log, workers: rc.Concurrency,
		budget: rc.CallBudget(), maxWait: config.MaxRetryWait(cfg.Kafka.Retention.D()),
		now: time.Now, group: rc.Group, tracer: telemetry.Tracer(tracerScope),
	}
	reads := []string{event.Topic(prefix, event.PostFailed)}
	for i, d := range rc.Delays {
		h.delays = append(h.delays, d.D())
		h.stage[event.RetryTopic(prefix, i+1)] = i + 1
		reads = append(reads, event.RetryTopic(prefix, i+1))
	}
	return &consumers.Member{
		Kafka: cfg.Kafka, Config: rc.Member, Group: rc.Group, Reads: reads, Topics: topics.Plain(append(reads, event.DLQTopic(prefix))...),
		Handler: h, Holds: holds, Metrics: metrics, Registry: reg, Log: log,
		MaxRecords: recordsPerCall * rc.Concurrency,
	}, nil
}

// Run runs the retries group configured by cfg until ctx ends, then stops gracefully.
func Run(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	m, err := New(ctx, cfg, log, Options{})
	if err != nil {
		return err
	}
	return m.Run(ctx)
}
