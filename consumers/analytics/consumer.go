package analytics

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/consumers"
	"github.com/socialbridge/bridge/consumers/analytics/store"
	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/internal/telemetry"
)

// Types are the event types the analytics consumer counts, one topic each.
var Types = []string{event.PostPublished, event.PostFailed, event.PostTokenExpired, event.PostRetry}

// pollSize is the most records one poll takes; a batch is one poll or more.
const pollSize = 10_000

// applyTimeout bounds one transaction.
const applyTimeout = 2 * time.Minute

func (s *Service) clientOptions(cfg config.Config, extra []kgo.Opt) []kgo.Opt {
	topics := make([]string, len(Types))
	for i, t := range Types {
		topics[i] = event.Topic(cfg.Kafka.TopicPrefix, t)
	}
	opts := append(consumers.MemberOptions(cfg.Kafka, cfg.Consumers.Analytics.Group, topics...),
		// The database holds the offsets (see startFromStore); what is committed to Kafka is
		// a copy for lag tools (kafkaCommits), never read back.
		kgo.DisableAutoCommit(),
		// Rebalances wait while a poll is tagged with the assignments it was fetched under
		// (see assignment), and no longer.
		kgo.BlockRebalanceOnPoll(),
		kgo.AdjustFetchOffsetsFn(s.startFromStore),
		kgo.OnPartitionsAssigned(s.assigned),
		kgo.OnPartitionsRevoked(s.revoked),
		kgo.OnPartitionsLost(s.revoked),
	)
	opts = append(opts, telemetry.KafkaHooks(cfg.Consumers.Analytics.Group)...)
	return append(opts, extra...)
}

// consume counts records until ctx ends. One goroutine polls and decodes, another writes:
// each batch is everything polled while the last one was being written (up to maxBatch
// records), so a busy stream is written in few large transactions and a quiet one at once
// (see writer). A poll that cannot be decoded now (registry away) is tried again, after a
// backoff, until it is. It returns nil, or the error that stopped the writer sooner
// (store.ErrGap).
func (s *Service) consume(ctx context.Context) error {
	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	polls := make(chan poll, max(1, s.maxBatch/s.pollSize()))
	written := make(chan error, 1)
	go func() {
		err := (&writer{s: s, polls: polls}).run(ctx)
		if err != nil {
			stop(err) // and so stop polling
		}
		written <- err
	}()
	s.pollInto(ctx, polls)
	close(polls)
	return <-written
}

// pollInto polls, decodes and hands each poll to the writer until ctx ends.
func (s *Service) pollInto(ctx context.Context, polls chan<- poll) {
	for s.pollOnce(ctx, polls) {
	}
}

// pollOnce polls once and hands what it got, decoded, to the writer. It reports false once
// ctx has ended or the client is closed.
func (s *Service) pollOnce(ctx context.Context, polls chan<- poll) bool {
	recs, p, ok := s.poll(ctx)
	if !ok {
		return false
	}
	if len(recs) == 0 {
		return true
	}
	if !s.decode(ctx, recs, p) {
		return false
	}
	select {
	case polls <- p:
		s.metrics.pending.Add(float64(len(p.records)))
		return true
	case <-ctx.Done():
		return false
	}
}

// poller is what consume polls through: the Kafka client, or a test's stand-in.
type poller interface {
	PollRecords(ctx context.Context, maxPollRecords int) kgo.Fetches
	AllowRebalance()
}

// poll polls once and tags the records with their assignments before it lets rebalances go
// on. It reports false once ctx has ended or the client is closed.
func (s *Service) poll(ctx context.Context) ([]*kgo.Record, poll, bool) {
	fetches := s.fetcher.PollRecords(ctx, s.pollSize())
	defer s.fetcher.AllowRebalance()
	if ctx.Err() != nil || fetches.IsClientClosed() {
		return nil, poll{}, false
	}
	fetches.EachError(func(topic string, partition int32, err error) {
		if !errors.Is(err, context.Canceled) {
			s.metrics.fetchErrors.Inc()
			s.log.Warn("analytics: fetch", "topic", topic, "partition", partition, "err", err)
		}
	})
	recs := fetches.Records()
	return recs, s.received(recs), true
}

// received tags polled records with their assignments, in a poll whose records decode fills
// in.
func (s *Service) received(recs []*kgo.Record) poll {
	out := make([]store.Record, len(recs))
	return poll{runs: s.owned.tag(recs, out), records: out, links: s.links(nil, recs)}
}

// decode decodes recs into p, trying again, after a backoff, while that fails for now
// (registry away). It reports false if ctx ends first.
func (s *Service) decode(ctx context.Context, recs []*kgo.Record, p poll) bool {
	wait := minBackoff
	for {
		err := s.decodeAll(recs, p.records)
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		s.log.Error("analytics: poll not decoded; trying again", "err", err, "in", wait)
		sleep(ctx, wait)
		wait = min(2*wait, maxBackoff)
	}
}

func (s *Service) pollSize() int { return min(s.pollMax, s.maxBatch) }

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// count applies a batch in one transaction, then hands its offsets to kafkaCommits. Once
// begun, the transaction is finished even if ctx ends meanwhile, so a graceful stop does not
// waste the batch.
func (s *Service) count(ctx context.Context, b *batch) error {
	tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), applyTimeout)
	defer cancel()
	tctx, span := s.batchSpan(tctx, b)
	start := time.Now()
	applied, err := s.apply(tctx, b)
	endBatchSpan(span, applied, err)
	s.metrics.observeBatch(start, b.records, applied, err)
	if err == nil {
		s.log.Debug("analytics: batch committed", "records", b.records, "counted", applied.Counted, "skipped", applied.Skipped, "took", time.Since(start))
		s.commits.add(applied.Next)
	}
	return err
}

func (s *Service) apply(ctx context.Context, b *batch) (store.Applied, error) {
	tx, err := s.store.Begin(ctx)
	if err != nil {
		return store.Applied{}, err
	}
	defer tx.Rollback()
	applied, err := tx.Apply(ctx, b.runs)
	if err != nil {
		return store.Applied{}, err
	}
	if s.beforeCommit != nil {
		if err := s.beforeCommit(); err != nil {
			return store.Applied{}, err
		}
	}
	return applied, tx.Commit()
}
