package consumers

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/internal/kafkaconn"
	"github.com/socialbridge/bridge/internal/telemetry"
	"github.com/socialbridge/bridge/internal/topics"
)

// startTimeout bounds each step of a member's start (topics, the metrics listener).
const startTimeout = 30 * time.Second

// Member is one process of a transactional group: what it reads, the topics it needs, and
// how it handles a batch.
type Member struct {
	Kafka    config.Kafka
	Config   config.Member
	Group    string
	Reads    []string       // topics consumed
	Topics   []topics.Topic // topics created (or checked) at start: every one read or written, unless the caller did
	Handler  Handler
	Holds    *Holds
	Metrics  *Metrics
	Registry *prometheus.Registry
	Log      *slog.Logger
	// MaxRecords bounds one batch.
	MaxRecords int
	// Gone, when set, is told of partitions this member lost or gave up, after their holds
	// are forgotten and before another member may take them.
	Gone func(cl *kgo.Client, partitions map[string][]int32)
	// Options are added to the session's (e.g. AdjustFetchOffsetsFn).
	Options []kgo.Opt
	// LagEvery is how often bridge_consumer_lag is measured; 0 is every 10 s.
	LagEvery time.Duration
}

func (m *Member) lagEvery() time.Duration {
	if m.LagEvery > 0 {
		return m.LagEvery
	}
	return 10 * time.Second
}

// Run serves /metrics and /healthz, makes sure the topics exist, joins the group and runs
// the Loop until ctx ends; then it finishes the batch in hand, commits it, and leaves the
// group. A transaction session that fails (no error of franz-go's End can be retried: a
// batch whose transaction the broker aborted while a long rebalance held its commit, or a
// commit whose outcome is unknown) is closed and a new one joins in its place, as a
// restarted process would: it fences the old one's producer and reads the committed
// offsets again, so nothing is lost or done twice. Failures in a row wait longer each time.
func (m *Member) Run(ctx context.Context) error {
	srv, err := Serve(m.Config.Listen, m.Registry, m.Log)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	defer func() { _ = srv.Shutdown(context.Background()) }() // the metrics server: nothing left to serve
	if err := m.ensureTopics(ctx); err != nil {
		return err
	}
	m.Log.Info("consuming", "topics", m.Reads, "metrics", "http://"+srv.Addr()+"/metrics")
	srv.SetRunning(true)
	defer srv.SetRunning(false)
	var wait time.Duration
	for {
		session, err := kgo.NewGroupTransactSession(m.options()...)
		if err != nil {
			return fmt.Errorf("kafka client: %w", err)
		}
		start := time.Now()
		err = m.consume(ctx, session)
		if err == nil || ctx.Err() != nil {
			return err
		}
		wait = retryWait(wait, time.Since(start))
		m.Log.Error("the transaction session failed; a new one joins the group", "err", err, "in", wait)
		if !sleep(ctx, wait) {
			return nil
		}
	}
}

// The wait before a new transaction session after one failed: sessionRetry, doubling at
// each failure in a row up to maxSessionRetry.
const (
	sessionRetry    = time.Second
	maxSessionRetry = 30 * time.Second
)

// retryWait is the wait before a new session after one that failed having lasted lasted,
// when the wait before that one was last (0: it was the first). A session that lasted more
// than a minute ended a run of failures, and the count starts again.
func retryWait(last, lasted time.Duration) time.Duration {
	if last == 0 || lasted > time.Minute {
		return sessionRetry
	}
	return min(2*last, maxSessionRetry)
}

// consume runs the Loop on session until ctx ends (nil) or the session fails (the Loop's
// error), then closes it: the member leaves the group, or, with an instance_id, keeps its
// place for the next session.
func (m *Member) consume(ctx context.Context, session *kgo.GroupTransactSession) error {
	defer session.Close()
	lagCtx, stopLag := context.WithCancel(ctx)
	defer stopLag()
	go m.Metrics.WatchLag(lagCtx, session.Client(), m.Group, m.lagEvery(), m.Log)
	loop := &Loop{Session: session, Client: session.Client(), Handler: m.Handler, Holds: m.Holds, MaxRecords: m.MaxRecords, Metrics: m.Metrics, Log: m.Log,
		EndTimeout: m.endTimeout()}
	err := loop.Run(ctx)
	m.Log.Info("leaving the group", "err", err)
	return err
}

// endTimeout bounds ending one transaction: the longest rebalance, which franz-go lets
// finish before it commits a batch's offsets, and endTimeout more for the commit itself.
func (m *Member) endTimeout() time.Duration { return RebalanceTimeout(m.Config) + endTimeout }

// sleep waits for d, or until ctx ends (false).
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (m *Member) ensureTopics(ctx context.Context) error {
	if len(m.Topics) == 0 {
		return nil
	}
	cl, err := kgo.NewClient(kafkaconn.Options(m.Kafka)...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	if err := topics.Ensure(ctx, cl, m.Kafka, m.Log, m.Topics...); err != nil {
		return fmt.Errorf("kafka at %v: %w", m.Kafka.Brokers, err)
	}
	return nil
}

func (m *Member) options() []kgo.Opt {
	gone := func(_ context.Context, cl *kgo.Client, ps map[string][]int32) {
		m.Holds.Forget(cl, ps)
		if m.Gone != nil {
			m.Gone(cl, ps)
		}
	}
	opts := append(MemberOptions(m.Kafka, m.Group, m.Reads...), TransactOptions(m.Group, m.Config)...)
	opts = append(opts, kgo.OnPartitionsRevoked(gone), kgo.OnPartitionsLost(gone))
	opts = append(opts, telemetry.KafkaHooks(m.Group)...)
	return append(opts, m.Options...)
}
