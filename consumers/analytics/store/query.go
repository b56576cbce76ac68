package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/socialbridge/bridge/consumers/analytics/sketch"
)

// Range selects the hours From ≤ hour < To (both whole UTC hours), of one platform or,
// when Platform is empty, of all.
type Range struct {
	From, To time.Time
	Platform string
}

// View is a read-only transaction: every query through it sees the same committed batches,
// so counts and percentiles read by several queries agree. PostgreSQL runs it REPEATABLE
// READ; SQLite (WAL) reads one snapshot from its first query on. It never blocks a batch.
type View struct {
	tx *sql.Tx
}

// View runs fn in a View, then ends it.
func (s *Store) View(ctx context.Context, fn func(*View) error) error {
	opts := &sql.TxOptions{ReadOnly: true}
	if s.dialect == postgres {
		opts.Isolation = sql.LevelRepeatableRead
	}
	tx, err := s.db.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("store: begin a read: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // read only: nothing to keep
	return fn(&View{tx: tx})
}

// PlatformHour is one platform's counts and publish delays in one hour.
type PlatformHour struct {
	Hour     time.Time
	Platform string
	Counts
	// Delays is the hour's sketch as stored (sketch.Counts.MergeEncoded reads it), nil when
	// the hour has no delay. It is valid only during the call it is passed to.
	Delays []byte
}

// EachHour calls fn with every hour and platform of r that has events, by hour then platform.
func (v *View) EachHour(ctx context.Context, r Range, fn func(*PlatformHour) error) error {
	q := `SELECT hour, platform, published, failed, token_expired, retries, delays FROM analytics_platform_hourly
		WHERE hour >= $1 AND hour < $2`
	args := []any{r.From.Unix(), r.To.Unix()}
	if r.Platform != "" {
		q += ` AND platform = $3`
		args = append(args, r.Platform)
	}
	var h PlatformHour
	return v.each(ctx, q+` ORDER BY hour, platform`, args, func(rows *sql.Rows) error {
		var hour int64
		var delays sql.RawBytes // not copied: valid until the next row, as fn is told
		if err := rows.Scan(&hour, &h.Platform, &h.Published, &h.Failed, &h.TokenExpired, &h.Retries, &delays); err != nil {
			return err
		}
		h.Hour, h.Delays = time.Unix(hour, 0).UTC(), delays
		return fn(&h)
	})
}

// PlatformTotals are one platform's counts over a range and its publish delays.
type PlatformTotals struct {
	Platform string
	Counts
	Delays *sketch.Counts
}

// ByPlatform returns the totals of each platform that has events in r, by platform name.
func (v *View) ByPlatform(ctx context.Context, r Range) ([]PlatformTotals, error) {
	var sums platformSums
	err := v.EachHour(ctx, r, func(h *PlatformHour) error {
		t := sums.of(h.Platform)
		t.add(h.Counts)
		if h.Delays == nil {
			return nil
		}
		return t.Delays.MergeEncoded(h.Delays)
	})
	if err != nil {
		return nil, err
	}
	return sums.sorted(), nil
}

// platformSums adds hours up by platform. The zero value is empty.
type platformSums struct {
	out   []*PlatformTotals
	index map[string]*PlatformTotals
}

// of returns platform's totals so far.
func (p *platformSums) of(platform string) *PlatformTotals {
	t := p.index[platform]
	if t == nil {
		if p.index == nil {
			p.index = map[string]*PlatformTotals{}
		}
		t = &PlatformTotals{Platform: platform, Delays: sketch.New()}
		p.index[platform] = t
		p.out = append(p.out, t)
	}
	return t
}

// sorted returns the totals by platform name.
func (p *platformSums) sorted() []PlatformTotals {
	out := make([]PlatformTotals, len(p.out))
	for i, t := range p.out {
		out[i] = *t
	}
	slices.SortFunc(out, func(a, b PlatformTotals) int { return strings.Compare(a.Platform, b.Platform) })
	return out
}

// ByPlatform is View.ByPlatform in a view of its own.
func (s *Store) ByPlatform(ctx context.Context, r Range) (out []PlatformTotals, err error) {
	err = s.View(ctx, func(v *View) error {
		out, err = v.ByPlatform(ctx, r)
		return err
	})
	return out, err
}

// each runs query and calls scan for every row.
func (v *View) each(ctx context.Context, query string, args []any, scan func(*sql.Rows) error) error {
	rows, err := v.tx.QueryContext(ctx, query, args...)
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
