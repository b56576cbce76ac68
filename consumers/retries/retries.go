package retries

import (
	"context"
	"log/slog"
	"time"

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

// New returns the member of the retries group configured by cfg, ready to Run.
func New(cfg config.Config, log *slog.Logger) (*consumers.Member, error) {
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
	reg := consumers.NewRegistry()
	metrics := consumers.NewMetrics(reg, rc.Group)
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
	m, err := New(cfg, log)
	if err != nil {
		return err
	}
	return m.Run(ctx)
}
