package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// ErrConflict: between reading and writing them, another transaction moved the offsets of a
// partition of the batch (a consumer that lost the partition still had it in flight). The
// transaction must be rolled back; applying the batch again counts only what is left.
var ErrConflict = errors.New("store: another consumer moved the offsets of a partition of this batch")

// ErrGap: a batch would store an offset past records it does not count. One of its runs of
// a partition starts past the partition's stored offset, or past the end of the batch's
// run of the partition before it (the records in between were read by nobody), or holds
// records out of offset order. It is the caller's bug: nothing is written, and applying the
// same batch again fails again.
var ErrGap = errors.New("store: the batch would store an offset past records it does not count")

// Tx is one batch's transaction: Apply, then Commit, or Rollback. It is not safe for
// concurrent use.
type Tx struct {
	tx      *sql.Tx
	dialect dialect
	cache   *sketchCache
	keep    func() // caches what Apply wrote, once committed
}

// Tally says what became of records.
type Tally struct {
	Counted int // records counted in the aggregates
	Ignored int // records past the stored offsets that count nothing (Kind Ignored)
	Skipped int // records before their partition's stored offset: counted by an earlier batch
}

// Applied says what a batch counted.
type Applied struct {
	Tally                   // all the batch's records
	Topics map[string]Tally // by topic
	// Next is the next offset to count of each partition the batch moved, as committed.
	Next map[TP]int64
}

// writeLock is taken by every batch's transaction on PostgreSQL before it reads anything:
// batches, of any number of consumers, write one at a time, as SQLite's BEGIN IMMEDIATE
// makes them there. A batch reads stored sketches, merges its own into them and writes them
// back; the lock is what makes that read-merge-write safe. Readers are not blocked: EXCLUSIVE
// mode conflicts with writers only.
const writeLock = `LOCK TABLE analytics_offsets IN EXCLUSIVE MODE`

// Begin starts a batch's transaction and waits for the write lock: until another consumer's
// batch commits, Begin (SQLite) or Begin's lock (PostgreSQL) waits.
func (s *Store) Begin(ctx context.Context) (*Tx, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("store: begin: %w", err)
	}
	if s.dialect == postgres {
		if _, err := tx.ExecContext(ctx, writeLock); err != nil {
			_ = tx.Rollback()
			return nil, fmt.Errorf("store: lock for writing: %w", err)
		}
	}
	return &Tx{tx: tx, dialect: s.dialect, cache: &s.cache}, nil
}

// Apply adds the runs' records to the aggregates and moves each partition's stored offset
// past its last record. A record is skipped if an earlier transaction counted it (it is
// before its partition's stored offset) or this one did (it is before the end of what the
// batch counted of its partition so far), so a batch applied twice, by two consumers, or
// holding the same records twice, counts each record once. An offset is never stored past a
// record not counted: a run that starts past what is counted of its partition (From after
// the stored offset) fails the batch with ErrGap. ErrConflict means another transaction
// moved an offset meanwhile, which the write lock rules out among consumers that take it
// (see Begin), and is checked all the same: roll back and apply again.
func (t *Tx) Apply(ctx context.Context, runs []Run) (Applied, error) {
	stored, err := readOffsets(ctx, t.tx)
	if err != nil {
		return Applied{}, err
	}
	agg, next, applied, err := aggregate(runs, stored)
	if err != nil {
		return Applied{}, err
	}
	agg.cachedHourly, agg.cachedPlatform = t.cache.take(stored)
	if err := agg.write(ctx, t.tx, t.dialect); err != nil {
		return Applied{}, err
	}
	if err := advance(ctx, t.tx, stored, next); err != nil {
		return Applied{}, err
	}
	t.keep = func() { t.cache.keep(stored, next, agg) }
	applied.Next = next
	return applied, nil
}

// Commit makes the batch's aggregates and offsets durable together.
func (t *Tx) Commit() error {
	if err := t.tx.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	if t.keep != nil {
		t.keep()
	}
	return nil
}

// Rollback discards the batch. It is a no-op after Commit.
func (t *Tx) Rollback() error {
	err := t.tx.Rollback()
	if errors.Is(err, sql.ErrTxDone) {
		return nil
	}
	return err
}

// aggregate sums the records not counted yet, and says how far each partition moves and
// what became of the records.
func aggregate(runs []Run, stored map[TP]int64) (*aggregates, map[TP]int64, Applied, error) {
	agg := newAggregates()
	next := make(map[TP]int64)
	tallies := map[string]*Tally{}
	for i := range runs {
		r := &runs[i]
		tally := tallies[r.Topic]
		if tally == nil {
			tally = &Tally{}
			tallies[r.Topic] = tally
		}
		if err := r.aggregate(agg, stored, next, tally); err != nil {
			return nil, nil, Applied{}, err
		}
	}
	a := Applied{Topics: make(map[string]Tally, len(tallies))}
	for topic, t := range tallies {
		a.Topics[topic] = *t
		a.Counted, a.Ignored, a.Skipped = a.Counted+t.Counted, a.Ignored+t.Ignored, a.Skipped+t.Skipped
	}
	return agg, next, a, nil
}

// aggregate adds to agg the run's records from counted on, the first offset of the partition
// not counted yet (where the batch moved it, else the stored offset, else 0), and moves next.
func (r *Run) aggregate(agg *aggregates, stored, next map[TP]int64, tally *Tally) error {
	counted, ok := next[r.TP]
	if !ok {
		counted = stored[r.TP]
	}
	if r.From > counted {
		return fmt.Errorf("%w: %s/%d read from %d, counted up to %d", ErrGap, r.Topic, r.Partition, r.From, counted)
	}
	moved, prev := false, r.From-1
	for i := range r.Records {
		rec := &r.Records[i]
		if rec.Offset <= prev {
			return fmt.Errorf("%w: %s/%d: offset %d after %d", ErrGap, r.Topic, r.Partition, rec.Offset, prev)
		}
		prev = rec.Offset
		if rec.Offset < counted {
			tally.Skipped++
			continue
		}
		if rec.Kind == Ignored {
			tally.Ignored++
		} else {
			agg.add(rec)
			tally.Counted++
		}
		counted, moved = rec.Offset+1, true
	}
	if moved {
		next[r.TP] = counted
	}
	return nil
}
