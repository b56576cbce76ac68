package store

import (
	"cmp"
	"context"
	"database/sql"
	"maps"
	"slices"
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

func (c *Counts) add(o Counts) {
	c.Published += o.Published
	c.Failed += o.Failed
	c.TokenExpired += o.TokenExpired
	c.Retries += o.Retries
}

type hourKey struct {
	hour              int64 // Unix seconds at the start of the hour
	platform, profile string
}

type platformKey struct {
	hour     int64
	platform string
}

type dayKey struct {
	day               int64 // Unix seconds at the start of the UTC day
	platform, profile string
}

// cell is what a batch adds to one row: counts, and the delays when it has any.
type cell struct {
	Counts
	delays *sketch.Counts // nil: no delay
}

func (c *cell) addDelays(d *sketch.Counts) {
	if c.delays == nil {
		c.delays = sketch.New()
	}
	c.delays.Merge(d)
}

// encoded is the cell's sketch in its stored form, nil when it has none.
func (c *cell) encoded() []byte {
	if c.delays == nil {
		return nil
	}
	return c.delays.AppendEncoded(nil)
}

// aggregates are one batch's additions, summed in memory so that each row is written once per
// batch however many records it counts: the hourly rows per profile, and the two rollups
// derived from them, per (hour, platform) and per (day, platform, profile).
type aggregates struct {
	hourly   map[hourKey]*cell
	platform map[platformKey]*cell
	daily    map[dayKey]*Counts
	// The stored sketches known without reading them (sketchCache), or nil.
	cachedHourly   map[hourKey]*sketch.Counts
	cachedPlatform map[platformKey]*sketch.Counts
}

func newAggregates() *aggregates {
	return &aggregates{hourly: map[hourKey]*cell{}, platform: map[platformKey]*cell{}, daily: map[dayKey]*Counts{}}
}

func (a *aggregates) add(r *Record) {
	k := hourKey{hourOf(r.OccurredAt), r.Platform, r.Profile}
	c := a.hourly[k]
	if c == nil {
		c = &cell{}
		a.hourly[k] = c
	}
	switch r.Kind {
	case Published:
		c.Published++
		if r.HasDelay {
			if c.delays == nil {
				c.delays = sketch.NewSparse()
			}
			c.delays.AddDelay(r.DelayMs)
		}
	case Failed:
		c.Failed++
	case TokenExpired:
		c.TokenExpired++
	case Retry:
		c.Retries++
	}
}

// rollUp derives the rollups from the hourly cells. It must run before the stored sketches
// are merged into those cells: the rollups add the batch's delays, not the rows'.
func (a *aggregates) rollUp() {
	for k, c := range a.hourly {
		pk := platformKey{k.hour, k.platform}
		p := a.platform[pk]
		if p == nil {
			p = &cell{}
			a.platform[pk] = p
		}
		p.add(c.Counts)
		if c.delays != nil {
			p.addDelays(c.delays)
		}
		dk := dayKey{dayOf(k.hour), k.platform, k.profile}
		d := a.daily[dk]
		if d == nil {
			d = &Counts{}
			a.daily[dk] = d
		}
		d.add(c.Counts)
	}
}

func hourOf(t time.Time) int64 { return t.Truncate(time.Hour).Unix() }

const secondsPerDay = 24 * 60 * 60

// dayOf is the start of the UTC day of hour (both Unix seconds), rounding down before 1970
// too.
func dayOf(hour int64) int64 { return hour - ((hour%secondsPerDay)+secondsPerDay)%secondsPerDay }

// The tables of aggregates. Counts add up; a row's sketch is replaced by the one the batch
// merged from the stored sketch and its own, or kept when the batch has no delays for it.
var (
	hourlyTable = table{name: "analytics_hourly",
		columns: []string{"hour", "platform", "profile", "published", "failed", "token_expired", "retries", "delays"},
		types:   []string{"bigint", "text", "text", "bigint", "bigint", "bigint", "bigint", "bytea"},
		key:     3, update: addCounts("analytics_hourly") + `, delays = COALESCE(excluded.delays, analytics_hourly.delays)`}
	platformTable = table{name: "analytics_platform_hourly",
		columns: []string{"hour", "platform", "published", "failed", "token_expired", "retries", "delays"},
		types:   []string{"bigint", "text", "bigint", "bigint", "bigint", "bigint", "bytea"},
		key:     2, update: addCounts("analytics_platform_hourly") + `, delays = COALESCE(excluded.delays, analytics_platform_hourly.delays)`}
	dailyTable = table{name: "analytics_profile_daily",
		columns: []string{"day", "platform", "profile", "published", "failed", "token_expired", "retries"},
		types:   []string{"bigint", "text", "text", "bigint", "bigint", "bigint", "bigint"},
		key:     3, update: addCounts("analytics_profile_daily")}
)

func addCounts(t string) string {
	return `published = ` + t + `.published + excluded.published, failed = ` + t + `.failed + excluded.failed, ` +
		`token_expired = ` + t + `.token_expired + excluded.token_expired, retries = ` + t + `.retries + excluded.retries`
}

// write adds the aggregates to the stored ones. The caller holds the write lock (Begin), so
// the sketches read here cannot change before they are written back.
func (a *aggregates) write(ctx context.Context, tx *sql.Tx, d dialect) error {
	a.rollUp()
	if err := a.writeHourly(ctx, tx, d); err != nil {
		return err
	}
	if err := a.writePlatforms(ctx, tx, d); err != nil {
		return err
	}
	return a.writeDaily(ctx, tx, d)
}

func (a *aggregates) writeHourly(ctx context.Context, tx *sql.Tx, d dialect) error {
	keys := slices.SortedFunc(maps.Keys(a.hourly), compareHour)
	var hours []int64
	var platforms, profiles []string
	for _, k := range keys {
		c := a.hourly[k]
		if c.delays == nil {
			continue
		}
		if cached := a.cachedHourly[k]; cached != nil {
			cached.Merge(c.delays) // the batch's few into the hour's many
			c.delays = cached
			continue
		}
		hours, platforms, profiles = append(hours, k.hour), append(platforms, k.platform), append(profiles, k.profile)
	}
	err := hourlyTable.readDelays(ctx, tx, d, func(rows *sql.Rows) error {
		var k hourKey
		var stored []byte
		if err := rows.Scan(&k.hour, &k.platform, &k.profile, &stored); err != nil {
			return err
		}
		return a.hourly[k].delays.MergeEncoded(stored)
	}, hours, platforms, profiles)
	if err != nil {
		return err
	}
	n := len(keys)
	hours, platforms, profiles = make([]int64, n), make([]string, n), make([]string, n)
	pub, failed, expired, retries, delays := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([][]byte, n)
	for i, k := range keys {
		c := a.hourly[k]
		hours[i], platforms[i], profiles[i] = k.hour, k.platform, k.profile
		pub[i], failed[i], expired[i], retries[i], delays[i] = c.Published, c.Failed, c.TokenExpired, c.Retries, c.encoded()
	}
	return hourlyTable.upsert(ctx, tx, d, hours, platforms, profiles, pub, failed, expired, retries, delays)
}

func (a *aggregates) writePlatforms(ctx context.Context, tx *sql.Tx, d dialect) error {
	keys := slices.SortedFunc(maps.Keys(a.platform), func(x, y platformKey) int {
		return cmp.Or(cmp.Compare(x.hour, y.hour), cmp.Compare(x.platform, y.platform))
	})
	var hours []int64
	var platforms []string
	for _, k := range keys {
		c := a.platform[k]
		if c.delays == nil {
			continue
		}
		if cached := a.cachedPlatform[k]; cached != nil {
			cached.Merge(c.delays)
			c.delays = cached
			continue
		}
		hours, platforms = append(hours, k.hour), append(platforms, k.platform)
	}
	err := platformTable.readDelays(ctx, tx, d, func(rows *sql.Rows) error {
		var k platformKey
		var stored []byte
		if err := rows.Scan(&k.hour, &k.platform, &stored); err != nil {
			return err
		}
		return a.platform[k].delays.MergeEncoded(stored)
	}, hours, platforms)
	if err != nil {
		return err
	}
	n := len(keys)
	hours, platforms = make([]int64, n), make([]string, n)
	pub, failed, expired, retries, delays := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([][]byte, n)
	for i, k := range keys {
		c := a.platform[k]
		hours[i], platforms[i] = k.hour, k.platform
		pub[i], failed[i], expired[i], retries[i], delays[i] = c.Published, c.Failed, c.TokenExpired, c.Retries, c.encoded()
	}
	return platformTable.upsert(ctx, tx, d, hours, platforms, pub, failed, expired, retries, delays)
}

func (a *aggregates) writeDaily(ctx context.Context, tx *sql.Tx, d dialect) error {
	keys := slices.SortedFunc(maps.Keys(a.daily), func(x, y dayKey) int {
		return cmp.Or(cmp.Compare(x.day, y.day), cmp.Compare(x.platform, y.platform), cmp.Compare(x.profile, y.profile))
	})
	n := len(keys)
	days, platforms, profiles := make([]int64, n), make([]string, n), make([]string, n)
	pub, failed, expired, retries := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	for i, k := range keys {
		c := a.daily[k]
		days[i], platforms[i], profiles[i] = k.day, k.platform, k.profile
		pub[i], failed[i], expired[i], retries[i] = c.Published, c.Failed, c.TokenExpired, c.Retries
	}
	return dailyTable.upsert(ctx, tx, d, days, platforms, profiles, pub, failed, expired, retries)
}

func compareHour(x, y hourKey) int {
	return cmp.Or(cmp.Compare(x.hour, y.hour), cmp.Compare(x.platform, y.platform), cmp.Compare(x.profile, y.profile))
}
