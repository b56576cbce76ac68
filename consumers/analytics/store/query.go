package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/socialbridge/bridge/consumers/analytics/sketch"
)

// Range selects the hours From ≤ hour < To (both whole UTC hours), of one platform or,
// when Platform is empty, of all.
type Range struct {
	From, To time.Time
	Platform string
}

func (r Range) where() (string, []any) {
	w := `hour >= $1 AND hour < $2`
	args := []any{r.From.Unix(), r.To.Unix()}
	if r.Platform != "" {
		w += ` AND platform = $3`
		args = append(args, r.Platform)
	}
	return w, args
}

// PlatformTotals are one platform's counts over a range and its publish delays.
type PlatformTotals struct {
	Platform string
	Counts
	Delays *sketch.Counts
}

// ByPlatform returns the totals of each platform that has events in r, by platform name.
func (s *Store) ByPlatform(ctx context.Context, r Range) ([]PlatformTotals, error) {
	w, args := r.where()
	var out []PlatformTotals
	index := map[string]int{}
	err := s.each(ctx, `SELECT platform, `+sums+` FROM analytics_hourly WHERE `+w+` GROUP BY platform ORDER BY platform`, args,
		func(rows *sql.Rows) error {
			var p PlatformTotals
			if err := rows.Scan(&p.Platform, &p.Published, &p.Failed, &p.TokenExpired, &p.Retries); err != nil {
				return err
			}
			p.Delays = sketch.New()
			index[p.Platform] = len(out)
			out = append(out, p)
			return nil
		})
	if err != nil {
		return nil, err
	}
	err = s.each(ctx, `SELECT platform, bucket, CAST(SUM(n) AS BIGINT) FROM analytics_delay_buckets WHERE `+w+` GROUP BY platform, bucket`, args,
		func(rows *sql.Rows) error {
			var platform string
			var bucket int32
			var n int64
			if err := rows.Scan(&platform, &bucket, &n); err != nil {
				return err
			}
			if i, ok := index[platform]; ok {
				out[i].Delays.Add(bucket, n)
			}
			return nil
		})
	return out, err
}

const sums = `CAST(SUM(published) AS BIGINT), CAST(SUM(failed) AS BIGINT), CAST(SUM(token_expired) AS BIGINT), CAST(SUM(retries) AS BIGINT)`

// HourCounts are one platform's counts in one hour.
type HourCounts struct {
	Hour     time.Time
	Platform string
	Counts
}

// Hourly returns the counts of every hour and platform with events in r, by hour then platform.
func (s *Store) Hourly(ctx context.Context, r Range) ([]HourCounts, error) {
	w, args := r.where()
	var out []HourCounts
	err := s.each(ctx, `SELECT hour, platform, `+sums+` FROM analytics_hourly WHERE `+w+` GROUP BY hour, platform ORDER BY hour, platform`, args,
		func(rows *sql.Rows) error {
			var h HourCounts
			var hour int64
			if err := rows.Scan(&hour, &h.Platform, &h.Published, &h.Failed, &h.TokenExpired, &h.Retries); err != nil {
				return err
			}
			h.Hour = time.Unix(hour, 0).UTC()
			out = append(out, h)
			return nil
		})
	return out, err
}

// HourDelays are the publish delays of one hour, all platforms of the range together.
type HourDelays struct {
	Hour   time.Time
	Delays *sketch.Counts
}

// HourlyDelays returns the delays of every hour of r that has some, by hour.
func (s *Store) HourlyDelays(ctx context.Context, r Range) ([]HourDelays, error) {
	w, args := r.where()
	var out []HourDelays
	err := s.each(ctx, `SELECT hour, bucket, CAST(SUM(n) AS BIGINT) FROM analytics_delay_buckets WHERE `+w+` GROUP BY hour, bucket ORDER BY hour`, args,
		func(rows *sql.Rows) error {
			var hour, n int64
			var bucket int32
			if err := rows.Scan(&hour, &bucket, &n); err != nil {
				return err
			}
			t := time.Unix(hour, 0).UTC()
			if len(out) == 0 || !out[len(out)-1].Hour.Equal(t) {
				out = append(out, HourDelays{Hour: t, Delays: sketch.New()})
			}
			out[len(out)-1].Delays.Add(bucket, n)
			return nil
		})
	return out, err
}

// ProfileTotals are one profile's counts over a range.
type ProfileTotals struct {
	Platform, Profile string
	Counts
}

// MostTroubled returns up to limit profiles of r with failures or token expiries, the most
// (failed + token expired) first.
func (s *Store) MostTroubled(ctx context.Context, r Range, limit int) ([]ProfileTotals, error) {
	w, args := r.where()
	q := `SELECT platform, profile, ` + sums + ` FROM analytics_hourly WHERE ` + w + `
		GROUP BY platform, profile HAVING SUM(failed) + SUM(token_expired) > 0
		ORDER BY SUM(failed) + SUM(token_expired) DESC, platform, profile LIMIT ` + fmt.Sprint(limit)
	var out []ProfileTotals
	err := s.each(ctx, q, args, func(rows *sql.Rows) error {
		var p ProfileTotals
		if err := rows.Scan(&p.Platform, &p.Profile, &p.Published, &p.Failed, &p.TokenExpired, &p.Retries); err != nil {
			return err
		}
		out = append(out, p)
		return nil
	})
	return out, err
}

// each runs query and calls scan for every row.
func (s *Store) each(ctx context.Context, query string, args []any, scan func(*sql.Rows) error) error {
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("store: query: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return fmt.Errorf("store: query: %w", err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: query: %w", err)
	}
	return nil
}
