package store

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/socialbridge/bridge/consumers/analytics/sketch"
)

// Counts are the numbers of events of each kind.
type Counts struct {
	Published    int64
	Failed       int64
	TokenExpired int64
	Retries      int64
}

type hourKey struct {
	hour              int64 // Unix seconds at the start of the hour
	platform, profile string
}

type bucketKey struct {
	hourKey
	bucket int32
}

// aggregates are one batch's additions, summed in memory so that each row is written once
// per batch however many records it counts.
type aggregates struct {
	counts  map[hourKey]*Counts
	buckets map[bucketKey]int64
}

func newAggregates() *aggregates {
	return &aggregates{counts: make(map[hourKey]*Counts), buckets: make(map[bucketKey]int64)}
}

func (a *aggregates) add(r *Record) {
	k := hourKey{hourOf(r.OccurredAt), r.Platform, r.Profile}
	c := a.counts[k]
	if c == nil {
		c = &Counts{}
		a.counts[k] = c
	}
	switch r.Kind {
	case Published:
		c.Published++
		if r.HasDelay {
			a.buckets[bucketKey{k, sketch.Bucket(r.DelayMs)}]++
		}
	case Failed:
		c.Failed++
	case TokenExpired:
		c.TokenExpired++
	case Retry:
		c.Retries++
	}
}

func hourOf(t time.Time) int64 { return t.Truncate(time.Hour).Unix() }

const (
	countsColumns = `INSERT INTO analytics_hourly (hour, platform, profile, published, failed, token_expired, retries) `
	countsMerge   = ` ON CONFLICT (hour, platform, profile) DO UPDATE SET
		published = analytics_hourly.published + excluded.published,
		failed = analytics_hourly.failed + excluded.failed,
		token_expired = analytics_hourly.token_expired + excluded.token_expired,
		retries = analytics_hourly.retries + excluded.retries`
	countsUnnest   = `SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[])`
	bucketsColumns = `INSERT INTO analytics_delay_buckets (hour, platform, profile, bucket, n) `
	bucketsMerge   = ` ON CONFLICT (hour, platform, profile, bucket) DO UPDATE SET n = analytics_delay_buckets.n + excluded.n`
	bucketsUnnest  = `SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::integer[], $5::bigint[])`
)

// write adds the aggregates to the stored ones. Rows go in key order, so that two
// transactions adding to the same rows lock them in the same order and do not deadlock.
func (a *aggregates) write(ctx context.Context, tx *sql.Tx, d dialect) error {
	keys := slices.SortedFunc(maps.Keys(a.counts), compareHour)
	bkeys := slices.SortedFunc(maps.Keys(a.buckets), func(x, y bucketKey) int {
		return cmp.Or(compareHour(x.hourKey, y.hourKey), cmp.Compare(x.bucket, y.bucket))
	})
	if d == postgres {
		return a.writeColumns(ctx, tx, keys, bkeys)
	}
	return a.writeRows(ctx, tx, keys, bkeys)
}

// writeColumns sends each table's rows as one statement of arrays, whose text never changes,
// so PostgreSQL plans it once per connection however many rows a batch has.
func (a *aggregates) writeColumns(ctx context.Context, tx *sql.Tx, keys []hourKey, bkeys []bucketKey) error {
	n := len(keys)
	hours, platforms, profiles := make([]int64, n), make([]string, n), make([]string, n)
	pub, failed, expired, retries := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	for i, k := range keys {
		c := a.counts[k]
		hours[i], platforms[i], profiles[i] = k.hour, k.platform, k.profile
		pub[i], failed[i], expired[i], retries[i] = c.Published, c.Failed, c.TokenExpired, c.Retries
	}
	if _, err := tx.ExecContext(ctx, countsColumns+countsUnnest+countsMerge, hours, platforms, profiles, pub, failed, expired, retries); err != nil {
		return fmt.Errorf("store: write hourly counts: %w", err)
	}
	n = len(bkeys)
	hours, platforms, profiles = make([]int64, n), make([]string, n), make([]string, n)
	buckets, counts := make([]int32, n), make([]int64, n)
	for i, k := range bkeys {
		hours[i], platforms[i], profiles[i], buckets[i], counts[i] = k.hour, k.platform, k.profile, k.bucket, a.buckets[k]
	}
	if _, err := tx.ExecContext(ctx, bucketsColumns+bucketsUnnest+bucketsMerge, hours, platforms, profiles, buckets, counts); err != nil {
		return fmt.Errorf("store: write delay buckets: %w", err)
	}
	return nil
}

// writeRows sends the rows as multi-row VALUES statements, for SQLite.
func (a *aggregates) writeRows(ctx context.Context, tx *sql.Tx, keys []hourKey, bkeys []bucketKey) error {
	args := make([]any, 0, 7*len(keys))
	for _, k := range keys {
		c := a.counts[k]
		args = append(args, k.hour, k.platform, k.profile, c.Published, c.Failed, c.TokenExpired, c.Retries)
	}
	if err := insertMany(ctx, tx, countsColumns+"VALUES ", countsMerge, 7, args); err != nil {
		return fmt.Errorf("store: write hourly counts: %w", err)
	}
	args = args[:0]
	for _, k := range bkeys {
		args = append(args, k.hour, k.platform, k.profile, k.bucket, a.buckets[k])
	}
	if err := insertMany(ctx, tx, bucketsColumns+"VALUES ", bucketsMerge, 5, args); err != nil {
		return fmt.Errorf("store: write delay buckets: %w", err)
	}
	return nil
}

func compareHour(x, y hourKey) int {
	return cmp.Or(cmp.Compare(x.hour, y.hour), cmp.Compare(x.platform, y.platform), cmp.Compare(x.profile, y.profile))
}

// maxParams keeps a statement under SQLite's limit of bound parameters (32766).
const maxParams = 30000

// insertMany runs insert + "(?, ?), (?, ?)…" + merge over args, width values per row, in as
// few statements as the parameter limit allows. The parameters are plain "?": SQLite looks
// numbered ones ($1) up in a list, a cost that grows with the square of their number.
func insertMany(ctx context.Context, tx *sql.Tx, insert, merge string, width int, args []any) error {
	perStmt := maxParams / width * width
	for start := 0; start < len(args); start += perStmt {
		end := min(len(args), start+perStmt)
		q := insert + placeholders(width, (end-start)/width) + merge
		if _, err := tx.ExecContext(ctx, q, args[start:end]...); err != nil {
			return err
		}
	}
	return nil
}

// placeholders returns rows groups of width parameters: (?, ?), (?, ?)…
func placeholders(width, rows int) string {
	group := "(" + strings.Repeat("?, ", width-1) + "?)"
	return strings.Repeat(group+", ", rows-1) + group
}
