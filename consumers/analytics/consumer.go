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
		kgo.AdjustFetchOffsetsFn(s.startFromStore),
		kgo.OnPartitionsAssigned(s.assigned),
		kgo.OnPartitionsRevoked(s.revoked),
		kgo.OnPartitionsLost(s.revoked),
	)
	return append(opts, extra...)
}

// consume counts records until ctx ends. One goroutine polls and decodes, another writes:
// each batch is everything polled while the last one was being written (up to maxBatch
// records), so a busy stream is written in few large transactions and a quiet one at once
// (see writer). A poll that cannot be decoded now (registry away) is tried again, after a
// backoff, until it is.
func (s *Service) consume(ctx context.Context) {
	polls := make(chan []store.Record, max(1, s.maxBatch/s.pollSize()))
	written := make(chan struct{})
	go func() { defer close(written); (&writer{s: s, polls: polls}).run(ctx) }()
	defer func() { close(polls); <-written }()
	for {
		fetches := s.client.PollRecords(ctx, s.pollSize())
		if ctx.Err() != nil || fetches.IsClientClosed() {
			return
		}
		fetches.EachError(func(topic string, partition int32, err error) {
			if !errors.Is(err, context.Canceled) {
				s.metrics.fetchErrors.Inc()
				s.log.Warn("analytics: fetch", "topic", topic, "partition", partition, "err", err)
			}
		})
		recs := fetches.Records()
		if len(recs) == 0 {
			continue
		}
		var decoded []store.Record
		s.retry(ctx, func() (err error) { decoded, err = s.decodeAll(recs); return err })
		if ctx.Err() != nil {
			return
		}
		select {
		case polls <- decoded:
		case <-ctx.Done():
			return
		}
	}
}

func (s *Service) pollSize() int { return min(pollSize, s.maxBatch) }

// retry runs attempt until it succeeds or ctx ends, backing off between failures.
func (s *Service) retry(ctx context.Context, attempt func() error) {
	wait := minBackoff
	for {
		err := attempt()
		if err == nil || ctx.Err() != nil {
			return
		}
		s.log.Error("analytics: poll not decoded; trying again", "err", err, "in", wait)
		sleep(ctx, wait)
		wait = min(2*wait, maxBackoff)
	}
}

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
func (s *Service) count(ctx context.Context, batch []store.Record) error {
	tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), applyTimeout)
	defer cancel()
	start := time.Now()
	applied, err := s.apply(tctx, batch)
	s.metrics.observeBatch(start, len(batch), applied, err)
	if err == nil {
		s.log.Debug("analytics: batch committed", "records", len(batch), "counted", applied.Counted, "skipped", applied.Skipped, "took", time.Since(start))
		s.commits.add(applied.Next)
	}
	return err
}

func (s *Service) apply(ctx context.Context, batch []store.Record) (store.Applied, error) {
	tx, err := s.store.Begin(ctx)
	if err != nil {
		return store.Applied{}, err
	}
	defer tx.Rollback()
	applied, err := tx.Apply(ctx, batch)
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
