package store

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/socialbridge/bridge/consumers/analytics/internal/dbtest"
	"github.com/socialbridge/bridge/consumers/analytics/sketch"
)

// TestMigrationFromBucketRows fills a database of the first schema (counts per hourly row, a
// row per delay bucket) with records, migrates it, and checks that it answers every query as
// a database of the current schema fed the same records does, and goes on counting.
func TestMigrationFromBucketRows(t *testing.T) {
	for _, kind := range dbtest.Kinds {
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			recs := migrationRecords()
			old := openVersion1(t, dbtest.New(t, kind), recs)
			if err := old.migrate(ctx); err != nil {
				t.Fatalf("migrate: %v", err)
			}
			fresh, err := Open(ctx, dbtest.New(t, kind))
			if err != nil {
				t.Fatal(err)
			}
			defer fresh.Close()
			applyAll(t, fresh, recs)
			compareStores(t, old, fresh)
			var n int
			if err := old.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM analytics_delay_buckets`).Scan(&n); err == nil {
				t.Error("analytics_delay_buckets is still there")
			}
			more := migrationRecords()
			for i := range more {
				more[i].Offset += int64(len(recs))
			}
			applyAll(t, old, more)
			applyAll(t, fresh, more)
			compareStores(t, old, fresh)
		})
	}
}

// migrationRecords are a few hundred records over three days, two platforms and three
// profiles, with and without delays.
func migrationRecords() []Record {
	rng := rand.New(rand.NewPCG(5, 6))
	t0 := time.Date(2026, 5, 8, 20, 0, 0, 0, time.UTC)
	var out []Record
	for i := range 600 {
		r := Record{Offset: int64(i), Kind: Kind(1 + rng.IntN(4)),
			OccurredAt: t0.Add(time.Duration(rng.Int64N(int64(60 * time.Hour)))),
			Platform:   fmt.Sprintf("p%d", rng.IntN(2)), Profile: fmt.Sprintf("profile-%d", rng.IntN(3))}
		if r.Kind == Published && rng.IntN(10) > 0 {
			r.DelayMs, r.HasDelay = int64(rng.ExpFloat64()*60_000)-1000, true
		}
		out = append(out, r)
	}
	return out
}

// openVersion1 returns a store whose database has only the first migration, holding recs as
// the first schema's consumer wrote them.
func openVersion1(t *testing.T, database string, recs []Record) *Store {
	t.Helper()
	s, err := connect(database)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	steps, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.migrateTo(ctx, steps[:1]); err != nil {
		t.Fatal(err)
	}
	counts := map[hourKey]*Counts{}
	buckets := map[hourKey]map[int32]int64{}
	for _, r := range recs {
		k := hourKey{hourOf(r.OccurredAt), r.Platform, r.Profile}
		if counts[k] == nil {
			counts[k], buckets[k] = &Counts{}, map[int32]int64{}
		}
		counts[k].add(map[Kind]Counts{Published: {Published: 1}, Failed: {Failed: 1}, TokenExpired: {TokenExpired: 1}, Retry: {Retries: 1}}[r.Kind])
		if r.HasDelay {
			buckets[k][sketch.Bucket(r.DelayMs)]++
		}
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		for k, c := range counts {
			if _, err := tx.ExecContext(ctx, `INSERT INTO analytics_hourly VALUES ($1, $2, $3, $4, $5, $6, $7)`,
				k.hour, k.platform, k.profile, c.Published, c.Failed, c.TokenExpired, c.Retries); err != nil {
				return err
			}
			for b, n := range buckets[k] {
				if _, err := tx.ExecContext(ctx, `INSERT INTO analytics_delay_buckets VALUES ($1, $2, $3, $4, $5)`,
					k.hour, k.platform, k.profile, b, n); err != nil {
					return err
				}
			}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO analytics_offsets VALUES ('t', 0, $1)`, len(recs))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func applyAll(t *testing.T, s *Store, recs []Record) {
	t.Helper()
	ctx := context.Background()
	for i := 0; i < len(recs); i += 70 {
		tx, err := s.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Apply(ctx, []Run{{TP: TP{Topic: "t"}, From: int64(i), Records: recs[i:min(i+70, len(recs))]}}); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
}

// compareStores checks that got answers the queries of several ranges as want does: counts
// exactly, percentiles within the sketches' accuracy of each other (the same delays in
// buckets of the same mapping give the same value).
func compareStores(t *testing.T, got, want *Store) {
	t.Helper()
	t0 := time.Date(2026, 5, 8, 0, 0, 0, 0, time.UTC)
	for _, r := range []Range{
		{From: t0, To: t0.Add(5 * 24 * time.Hour)},
		{From: t0.Add(21 * time.Hour), To: t0.Add(50 * time.Hour), Platform: "p1"},
		{From: t0.Add(23 * time.Hour), To: t0.Add(25 * time.Hour)},
	} {
		g, w := summarize(t, got, r), summarize(t, want, r)
		if !reflect.DeepEqual(g, w) {
			t.Errorf("range %v – %v %s:\n got %v\nwant %v", r.From, r.To, r.Platform, g, w)
		}
	}
}

// summarize is what the queries say of r, as text: totals and percentiles by platform, the
// counts and delays of every hour, the most troubled profiles, and the per-profile sketches.
func summarize(t *testing.T, s *Store, r Range) []string {
	t.Helper()
	ctx := context.Background()
	var out []string
	quantiles := func(c *sketch.Counts) string {
		p50, _ := c.Quantile(0.5)
		p95, _ := c.Quantile(0.95)
		return fmt.Sprintf("n=%d p50=%.3f p95=%.3f", c.Count(), p50, p95)
	}
	err := s.View(ctx, func(v *View) error {
		ps, err := v.ByPlatform(ctx, r)
		if err != nil {
			return err
		}
		for _, p := range ps {
			out = append(out, fmt.Sprintf("%s %+v %s", p.Platform, p.Counts, quantiles(p.Delays)))
		}
		hours, err := v.Hours(ctx, r)
		if err != nil {
			return err
		}
		for _, h := range hours.Counts {
			out = append(out, fmt.Sprintf("%s %s %+v", h.Hour.Format(time.RFC3339), h.Platform, h.Counts))
		}
		for _, h := range hours.Delays {
			out = append(out, fmt.Sprintf("%s %s", h.Hour.Format(time.RFC3339), quantiles(h.Delays)))
		}
		top, err := v.MostTroubled(ctx, r, 4)
		for _, p := range top {
			out = append(out, fmt.Sprintf("troubled %s/%s %+v", p.Platform, p.Profile, p.Counts))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT hour, platform, profile, delays FROM analytics_hourly WHERE delays IS NOT NULL ORDER BY hour, platform, profile`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var k hourKey
		var b []byte
		if err := rows.Scan(&k.hour, &k.platform, &k.profile, &b); err != nil {
			t.Fatal(err)
		}
		c := sketch.New()
		if err := c.MergeEncoded(b); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("hourly %+v %s", k, quantiles(c)))
	}
	return out
}
