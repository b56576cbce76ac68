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
// records), so a busy stream is written in few large transactions and a quiet one at once.
// A batch that fails is tried again, after a backoff, until it succeeds: the records stay in
// hand, so nothing is lost while the database or the registry is away.
func (s *Service) consume(ctx context.Context) {
	polls := make(chan []store.Record, max(1, s.maxBatch/s.pollSize()))
	written := make(chan struct{})
	go func() { defer close(written); s.write(ctx, polls) }()
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

// write counts the polls in batches until polls is closed. After ctx ends it still tries
// each batch in hand once, so a graceful stop does not waste them.
func (s *Service) write(ctx context.Context, polls <-chan []store.Record) {
	var next []store.Record
	for {
		batch := next
		if batch == nil {
			var ok bool
			if batch, ok = <-polls; !ok {
				return
			}
		}
		batch, next = gather(batch, polls, s.maxBatch)
		s.retry(ctx, func() error { return s.count(ctx, batch) })
	}
}

// gather adds to first the polls already waiting, up to limit records in all, copied once
// into a batch; a poll that would pass limit is returned as the start of the next batch.
func gather(first []store.Record, polls <-chan []store.Record, limit int) (batch, next []store.Record) {
	waiting := [][]store.Record{first}
	n := len(first)
drain:
	for n < limit {
		select {
		case more, ok := <-polls:
			if !ok {
				break drain
			}
			if n+len(more) > limit {
				next = more
				break drain
			}
			waiting = append(waiting, more)
			n += len(more)
		default:
			break drain
		}
	}
	if len(waiting) == 1 {
		return first, next
	}
	batch = make([]store.Record, 0, n)
	for _, w := range waiting {
		batch = append(batch, w...)
	}
	return batch, next
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
	if testHookBeforeCommit != nil {
		testHookBeforeCommit()
	}
	return applied, tx.Commit()
}
