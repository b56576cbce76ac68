package analytics

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/bridge/event"
	"github.com/socialbridge/bridge/bridge/producer"
	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/consumers/analytics/store"
	"github.com/socialbridge/bridge/internal/kafkaconn"
)

// Types are the event types the analytics consumer counts, one topic each.
var Types = []string{event.PostPublished, event.PostFailed, event.PostTokenExpired, event.PostRetry}

// Backoff between attempts at a batch that failed (database or registry unreachable).
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 10 * time.Second
)

// applyTimeout bounds one transaction.
const applyTimeout = 2 * time.Minute

// testHookBeforeCommit, when set (by tests only), runs inside each batch's transaction after
// the aggregates and offsets are written and before the commit.
var testHookBeforeCommit func()

func (s *Service) clientOptions(cfg config.Config, extra []kgo.Opt) []kgo.Opt {
	topics := make([]string, len(Types))
	for i, t := range Types {
		topics[i] = producer.Topic(cfg.Kafka.TopicPrefix, t)
	}
	opts := append(kafkaconn.Options(cfg.Kafka),
		kgo.ConsumerGroup(cfg.Consumers.Analytics.Group),
		kgo.ConsumeTopics(topics...),
		// The database holds the offsets (see startFromStore); nothing is committed to Kafka.
		kgo.DisableAutoCommit(),
		kgo.AdjustFetchOffsetsFn(s.startFromStore),
		kgo.OnPartitionsAssigned(s.logAssigned),
		kgo.OnPartitionsRevoked(s.logRevoked),
		kgo.OnPartitionsLost(s.logRevoked),
	)
	return append(opts, extra...)
}

// consume counts batches until ctx ends: one goroutine polls and decodes, another writes,
// so the next batch is fetched and decoded while the database commits the last. A batch
// that fails is tried again, after a backoff, until it succeeds: the records stay in hand,
// so nothing is lost while the database or the registry is away.
func (s *Service) consume(ctx context.Context) {
	batches := make(chan []store.Record, 1)
	written := make(chan struct{})
	go func() {
		defer close(written)
		for batch := range batches {
			s.retry(ctx, func() error { return s.count(ctx, batch) })
		}
	}()
	defer func() { close(batches); <-written }()
	for {
		fetches := s.client.PollRecords(ctx, s.maxBatch)
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
		var batch []store.Record
		s.retry(ctx, func() (err error) { batch, err = s.decodeAll(recs); return err })
		if ctx.Err() != nil {
			return
		}
		select {
		case batches <- batch:
		case <-ctx.Done():
			return
		}
	}
}

// retry runs attempt until it succeeds or ctx ends, backing off between failures.
func (s *Service) retry(ctx context.Context, attempt func() error) {
	wait := minBackoff
	for {
		err := attempt()
		if err == nil || ctx.Err() != nil {
			return
		}
		if errors.Is(err, store.ErrConflict) {
			s.log.Info("analytics: a partition of the batch moved on; counting what is left", "err", err)
		} else {
			s.log.Error("analytics: batch not counted; trying again", "err", err, "in", wait)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, maxBackoff)
	}
}

// count applies a batch in one transaction. Once begun, the transaction is finished even if
// ctx ends meanwhile, so a graceful stop does not waste the batch.
func (s *Service) count(ctx context.Context, batch []store.Record) error {
	tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), applyTimeout)
	defer cancel()
	start := time.Now()
	applied, err := s.apply(tctx, batch)
	s.metrics.observeBatch(start, applied, err)
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
	if testHookBeforeCommit != nil {
		testHookBeforeCommit()
	}
	return applied, tx.Commit()
}
