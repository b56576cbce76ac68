package analytics

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/socialbridge/bridge/consumers/analytics/store"
)

// writer is consume's writing half. It takes the polls in batches, each everything polled
// while the last one was being written (up to maxBatch records), and counts each batch in one
// transaction. Batches are written in the order they were polled, and none is written while
// the one before it is not: a partition's stored offset only ever moves past records that are
// counted. A batch that fails is tried again, after a backoff, until it is written; its records
// stay in hand meanwhile, so nothing is lost while the database is away. The records of
// partitions revoked or lost since they were polled are dropped as batches are gathered (see
// assignment).
type writer struct {
	s     *Service
	polls <-chan poll
	held  *poll  // a poll that did not fit the last batch, the start of the next
	batch *batch // in hand: gathered, not written yet
}

// batch is what one transaction counts: runs of the polls gathered.
type batch struct {
	runs    []store.Run
	records int
	links   []trace.Link // to its records' traces, at most batchLinks
}

// run writes until polls is closed and what was polled is written. Once ctx has ended (the
// consumer is stopping), each batch is tried once more at most, and the first that fails ends
// the writing: the records from it on are left for whoever counts their partitions next, who
// reads them again from the database's offsets. A batch the store refuses for a gap
// (store.ErrGap, a bug) ends the writing too, and is returned: the consumer stops rather than
// count wrong, and its next start reads every partition from the database's offsets again.
func (w *writer) run(ctx context.Context) error {
	wait := minBackoff
	for {
		if w.batch == nil && !w.gather(true) {
			return nil
		}
		err := w.attempt(ctx)
		switch {
		case err == nil:
			wait = minBackoff
			continue
		case errors.Is(err, store.ErrGap):
			w.s.log.Error("analytics: batch refused by the database; stopping", "err", err)
			return err
		case ctx.Err() != nil:
			w.s.log.Warn("analytics: stopping with records not counted; they are read again from the database's offsets", "err", err)
			return nil
		case errors.Is(err, store.ErrConflict):
			w.s.log.Info("analytics: a partition of the batch moved on; counting what is left", "err", err)
		default:
			w.s.log.Error("analytics: batch not counted; trying again", "err", err, "in", wait)
		}
		sleep(ctx, wait)
		wait = min(2*wait, maxBackoff)
	}
}

// gather puts the next batch in hand: the held poll or the next one (waiting for it if block),
// and the polls already waiting, up to maxBatch records in all. It reports false if there is
// none: polls is closed, or empty and not block.
func (w *writer) gather(block bool) bool {
	for {
		first := w.held
		if first == nil {
			var p poll
			var ok bool
			if block {
				p, ok = <-w.polls
			} else {
				select {
				case p, ok = <-w.polls:
				default:
				}
			}
			if !ok {
				return false
			}
			first = &p
		}
		w.batch, w.held = w.s.gather(*first, w.polls)
		if w.batch.records > 0 {
			return true
		}
		w.batch = nil // every run dropped: gather again
	}
}

// attempt counts the batch in hand in one transaction, and lets it go once committed.
func (w *writer) attempt(ctx context.Context) error {
	if err := w.s.count(ctx, w.batch); err != nil {
		return err
	}
	w.s.metrics.pending.Sub(float64(w.batch.records))
	w.batch = nil
	return nil
}

// gather makes a batch of first and the polls already waiting, up to maxBatch records in all;
// a poll that would pass maxBatch is returned as the start of the next batch. The runs of
// partitions whose assignment ended since they were polled are dropped.
func (s *Service) gather(first poll, polls <-chan poll) (b *batch, next *poll) {
	b = &batch{}
	s.add(b, first)
	n := len(first.records)
drain:
	for n < s.maxBatch {
		select {
		case more, ok := <-polls:
			if !ok {
				break drain
			}
			if n+len(more.records) > s.maxBatch {
				next = &more
				break drain
			}
			s.add(b, more)
			n += len(more.records)
		default:
			break drain
		}
	}
	return b, next
}

// add adds p's runs to b, but those of partitions no longer held under the assignment they
// were polled under: those are dropped.
func (s *Service) add(b *batch, p poll) {
	for _, r := range p.runs {
		if !s.owned.current(r.TP, r.epoch) {
			s.metrics.pending.Sub(float64(len(r.Records)))
			continue
		}
		b.runs = append(b.runs, r.Run)
		b.records += len(r.Records)
	}
	b.links = append(b.links, p.links[:min(len(p.links), batchLinks-len(b.links))]...)
}

// backoff bounds the wait between attempts at a batch or a poll that failed.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 10 * time.Second
)
