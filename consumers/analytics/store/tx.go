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
}

// Applied says what a batch counted.
type Applied struct {
	Counted int // records counted in the aggregates
	Ignored int // records past the stored offsets that count nothing (Kind Ignored)
	Skipped int // records before their partition's stored offset: counted by an earlier batch
}

// Begin starts a batch's transaction.
func (s *Store) Begin(ctx context.Context) (*Tx, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("store: begin: %w", err)
	}
	return &Tx{tx: tx, dialect: s.dialect}, nil
}

// Apply adds recs to the aggregates and moves each partition's stored offset past its last
// record. Records before their partition's stored offset were counted by an earlier
// transaction and are skipped, so a batch applied twice, or by two consumers, counts once.
// Records of one partition must come in offset order. ErrConflict means another
// transaction moved an offset meanwhile: roll back and apply again.
func (t *Tx) Apply(ctx context.Context, recs []Record) (Applied, error) {
	stored, err := readOffsets(ctx, t.tx)
	if err != nil {
		return Applied{}, err
	}
	agg, next, applied := aggregate(recs, stored)
	if err := agg.write(ctx, t.tx, t.dialect); err != nil {
		return Applied{}, err
	}
	if err := advance(ctx, t.tx, stored, next); err != nil {
		return Applied{}, err
	}
	return applied, nil
}

// Commit makes the batch's aggregates and offsets durable together.
func (t *Tx) Commit() error {
	if err := t.tx.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", err)
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

func aggregate(recs []Record, stored map[TP]int64) (*aggregates, map[TP]int64, Applied) {
	agg := newAggregates()
	next := make(map[TP]int64)
	var a Applied
	for i := range recs {
		r := &recs[i]
		tp := TP{r.Topic, r.Partition}
		if n, ok := stored[tp]; ok && r.Offset < n {
			a.Skipped++
			continue
		}
		if r.Kind == Ignored {
			a.Ignored++
		} else {
			agg.add(r)
			a.Counted++
		}
		next[tp] = max(next[tp], r.Offset+1)
	}
	return agg, next, a
}
