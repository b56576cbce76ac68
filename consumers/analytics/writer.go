package analytics

import (
	"context"
	"errors"
	"time"

	"github.com/socialbridge/bridge/consumers/analytics/store"
)

// writer is consume's writing half. It takes the polls in batches, each everything polled
// while the last one was being written (up to maxBatch records), and counts each batch in one
// transaction. Batches are written in the order they were polled, and none is written while
// the one before it is not: a partition's stored offset only ever moves past records that are
// counted. A batch that fails is tried again, after a backoff, until it is written; its records
// stay in hand meanwhile, so nothing is lost while the database is away.
type writer struct {
	s     *Service
	polls <-chan []store.Record
	held  []store.Record // a poll that did not fit the last batch, the start of the next
	batch []store.Record // in hand: gathered, not written yet
}

// run writes until polls is closed and what was polled is written. Once ctx has ended (the
// consumer is stopping), each batch is tried once more at most, and the first that fails ends
// the writing: the records from it on are left for whoever counts their partitions next, who
// reads them again from the database's offsets.
func (w *writer) run(ctx context.Context) {
	wait := minBackoff
	for {
		if w.batch == nil && !w.gather(true) {
			return
		}
		err := w.attempt(ctx)
		switch {
		case err == nil:
			wait = minBackoff
			continue
		case ctx.Err() != nil:
			w.s.log.Warn("analytics: stopping with records not counted; they are read again from the database's offsets", "err", err)
			return
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
	first := w.held
	if first == nil {
		var ok bool
		if block {
			first, ok = <-w.polls
		} else {
			select {
			case first, ok = <-w.polls:
			default:
			}
		}
		if !ok {
			return false
		}
	}
	w.batch, w.held = gather(first, w.polls, w.s.maxBatch)
	return true
}

// attempt counts the batch in hand in one transaction, and lets it go once committed.
func (w *writer) attempt(ctx context.Context) error {
	if err := w.s.count(ctx, w.batch); err != nil {
		return err
	}
	w.batch = nil
	return nil
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

// backoff bounds the wait between attempts at a batch or a poll that failed.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 10 * time.Second
)
