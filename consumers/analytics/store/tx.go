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

// Apply adds recs to the aggregates and moves each partition's stored offset past its last
// record. Records before their partition's stored offset were counted by an earlier
// transaction, and records before the highest offset of their partition that recs counted
// already were counted by this one: both are skipped, so a batch applied twice, by two
// consumers, or holding the same records twice, counts each record once.
// Records of one partition must come in offset order. ErrConflict means another
// transaction moved an offset meanwhile, which the write lock rules out among consumers
// that take it (see Begin), and is checked all the same: roll back and apply again.
func (t *Tx) Apply(ctx context.Context, recs []Record) (Applied, error) {
	stored, err := readOffsets(ctx, t.tx)
	if err != nil {
		return Applied{}, err
	}
	agg, next, applied := aggregate(recs, stored)
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

// aggregate sums the records past their partition's stored offset and past those of the
// partition it summed already, and says how far each
// partition moves and what became of the records. A poll hands over a partition's records
// together, so the partition's state is looked up once per run of them, not per record.
func aggregate(recs []Record, stored map[TP]int64) (*aggregates, map[TP]int64, Applied) {
	agg := newAggregates()
	next := make(map[TP]int64)
	tallies := map[string]*Tally{}
	var run partitionRun
	for i := range recs {
		r := &recs[i]
		if i == 0 || r.Partition != run.tp.Partition || r.Topic != run.tp.Topic {
			run.end(next)
			run.start(TP{r.Topic, r.Partition}, stored, next, tallies)
		}
		// Below the stored offset: counted by an earlier batch; below next: by this one.
		if (run.hasStored && r.Offset < run.stored) || r.Offset < run.next {
			run.tally.Skipped++
			continue
		}
		if r.Kind == Ignored {
			run.tally.Ignored++
		} else {
			agg.add(r)
			run.tally.Counted++
		}
		run.next = max(run.next, r.Offset+1)
	}
	run.end(next)
	a := Applied{Topics: make(map[string]Tally, len(tallies))}
	for topic, t := range tallies {
		a.Topics[topic] = *t
		a.Counted, a.Ignored, a.Skipped = a.Counted+t.Counted, a.Ignored+t.Ignored, a.Skipped+t.Skipped
	}
	return agg, next, a
}

// partitionRun is the state of the partition whose records aggregate is reading.
type partitionRun struct {
	tp        TP
	stored    int64 // the partition's stored offset, if hasStored
	hasStored bool
	next      int64 // the next offset after its records past stored, 0 for none yet
	tally     *Tally
}

func (p *partitionRun) start(tp TP, stored, next map[TP]int64, tallies map[string]*Tally) {
	p.tp, p.next = tp, next[tp]
	p.stored, p.hasStored = stored[tp]
	if p.tally = tallies[tp.Topic]; p.tally == nil {
		p.tally = &Tally{}
		tallies[tp.Topic] = p.tally
	}
}

func (p *partitionRun) end(next map[TP]int64) {
	if p.tally != nil && p.next > 0 {
		next[p.tp] = p.next
	}
}
