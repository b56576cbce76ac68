package store

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"maps"
	"slices"
)

// querier is the database or a transaction.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// Offsets returns the next offset to count of every partition the database has counted
// records of. A partition it has not is absent: start it from its first record.
func (s *Store) Offsets(ctx context.Context) (map[TP]int64, error) {
	return readOffsets(ctx, s.db)
}

func readOffsets(ctx context.Context, q querier) (map[TP]int64, error) {
	rows, err := q.QueryContext(ctx, `SELECT topic, kafka_partition, next_offset FROM analytics_offsets`)
	if err != nil {
		return nil, fmt.Errorf("store: read offsets: %w", err)
	}
	defer rows.Close()
	out := make(map[TP]int64)
	for rows.Next() {
		var tp TP
		var next int64
		if err := rows.Scan(&tp.Topic, &tp.Partition, &next); err != nil {
			return nil, fmt.Errorf("store: read offsets: %w", err)
		}
		out[tp] = next
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: read offsets: %w", err)
	}
	return out, nil
}

// advance moves each partition's stored offset from the value read at the start of the
// transaction (stored) to next, on the condition that it is still that value: a row another
// transaction changed or created meanwhile is a conflict, not an overwrite.
func advance(ctx context.Context, tx *sql.Tx, stored, next map[TP]int64) error {
	tps := slices.SortedFunc(maps.Keys(next), func(a, b TP) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	for _, tp := range tps {
		var res sql.Result
		var err error
		if old, ok := stored[tp]; ok {
			res, err = tx.ExecContext(ctx, `UPDATE analytics_offsets SET next_offset = $1
				WHERE topic = $2 AND kafka_partition = $3 AND next_offset = $4`, next[tp], tp.Topic, tp.Partition, old)
		} else {
			res, err = tx.ExecContext(ctx, `INSERT INTO analytics_offsets (topic, kafka_partition, next_offset)
				VALUES ($1, $2, $3) ON CONFLICT (topic, kafka_partition) DO NOTHING`, tp.Topic, tp.Partition, next[tp])
		}
		if err != nil {
			return fmt.Errorf("store: write offset of %s/%d: %w", tp.Topic, tp.Partition, err)
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return fmt.Errorf("%w (%s/%d)", ErrConflict, tp.Topic, tp.Partition)
		}
	}
	return nil
}
