package store

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/socialbridge/bridge/consumers/analytics/sketch"
)

// sketchBuckets is the part of migration 2 that SQL cannot do: it turns the rows of
// analytics_delay_buckets (a count per sketch bucket) into one encoded sketch per hourly row
// and per (hour, platform), then drops that table. Every bucket row has its hourly row (a
// batch wrote both), and the SQL part made the (hour, platform) rows, so adding zero counts
// with the sketches only sets the sketches.
func sketchBuckets(ctx context.Context, tx *sql.Tx, d dialect) error {
	a := newAggregates()
	rows, err := tx.QueryContext(ctx, `SELECT hour, platform, profile, bucket, n FROM analytics_delay_buckets`)
	if err != nil {
		return fmt.Errorf("read delay buckets: %w", err)
	}
	for rows.Next() {
		var k hourKey
		var bucket int32
		var n int64
		if err := rows.Scan(&k.hour, &k.platform, &k.profile, &bucket, &n); err != nil {
			rows.Close()
			return fmt.Errorf("read delay buckets: %w", err)
		}
		c := a.hourly[k]
		if c == nil {
			c = &cell{delays: sketch.NewSparse()}
			a.hourly[k] = c
		}
		c.delays.Add(bucket, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read delay buckets: %w", err)
	}
	a.rollUp()
	if err := a.writeHourly(ctx, tx, d); err != nil {
		return err
	}
	if err := a.writePlatforms(ctx, tx, d); err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `DROP TABLE analytics_delay_buckets`)
	return err
}
