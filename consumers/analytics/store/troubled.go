package store

import (
	"context"
	"database/sql"
	"fmt"
)

// ProfileTotals are one profile's counts over a range.
type ProfileTotals struct {
	Platform, Profile string
	Counts
}

// MostTroubled returns up to limit profiles of r with failures or token expiries, the most
// (failed + token expired) first. The whole days of r are read from the daily rollup (a row
// per profile and day) and only the hours before the first and after the last whole day
// from the hourly rows.
func (v *View) MostTroubled(ctx context.Context, r Range, limit int) ([]ProfileTotals, error) {
	from, to := r.From.Unix(), r.To.Unix()
	firstDay, endDay := dayOf(from+secondsPerDay-1), dayOf(to)
	if firstDay >= endDay { // no whole day: hours only
		firstDay, endDay = to, to
	}
	args := []any{firstDay, endDay, from, to}
	platform := ""
	if r.Platform != "" {
		platform = ` AND platform = $5`
		args = append(args, r.Platform)
	}
	q := `SELECT platform, profile, ` + sums + ` FROM (
			SELECT platform, profile, published, failed, token_expired, retries FROM analytics_profile_daily
			WHERE day >= $1 AND day < $2` + platform + `
			UNION ALL
			SELECT platform, profile, published, failed, token_expired, retries FROM analytics_hourly
			WHERE hour >= $3 AND hour < $1` + platform + `
			UNION ALL
			SELECT platform, profile, published, failed, token_expired, retries FROM analytics_hourly
			WHERE hour >= $2 AND hour < $4` + platform + `
		) AS r
		GROUP BY platform, profile HAVING SUM(failed) + SUM(token_expired) > 0
		ORDER BY SUM(failed) + SUM(token_expired) DESC, platform, profile LIMIT ` + fmt.Sprint(limit)
	var out []ProfileTotals
	err := v.each(ctx, q, args, func(rows *sql.Rows) error {
		var p ProfileTotals
		if err := rows.Scan(&p.Platform, &p.Profile, &p.Published, &p.Failed, &p.TokenExpired, &p.Retries); err != nil {
			return err
		}
		out = append(out, p)
		return nil
	})
	return out, err
}

const sums = `CAST(SUM(published) AS BIGINT), CAST(SUM(failed) AS BIGINT), CAST(SUM(token_expired) AS BIGINT), CAST(SUM(retries) AS BIGINT)`
