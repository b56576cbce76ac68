package store

import (
	"context"
	"time"

	"github.com/socialbridge/bridge/consumers/analytics/sketch"
)

// HourCounts are one platform's counts in one hour.
type HourCounts struct {
	Hour     time.Time
	Platform string
	Counts
}

// HourDelays are the publish delays of one hour, all selected platforms together.
type HourDelays struct {
	Hour   time.Time
	Delays *sketch.Counts
}

// Hours is a range hour by hour, read in one pass over the (hour, platform) rollup.
type Hours struct {
	// Platforms are the totals of every platform with events in the range, whichever the
	// range selects, by name.
	Platforms []PlatformTotals
	// Counts are the counts of every hour and selected platform with events, by hour then
	// platform.
	Counts []HourCounts
	// Delays are the delays of every hour with some, the selected platforms merged, by hour.
	Delays []HourDelays
}

// Hours reads r hour by hour.
func (v *View) Hours(ctx context.Context, r Range) (Hours, error) {
	var out Hours
	var sums platformSums
	all := r
	all.Platform = ""
	err := v.EachHour(ctx, all, func(h *PlatformHour) error {
		if err := sums.add(h); err != nil {
			return err
		}
		if r.Platform != "" && r.Platform != h.Platform {
			return nil
		}
		out.Counts = append(out.Counts, HourCounts{Hour: h.Hour, Platform: h.Platform, Counts: h.Counts})
		if h.Delays == nil {
			return nil
		}
		if n := len(out.Delays); n == 0 || !out.Delays[n-1].Hour.Equal(h.Hour) {
			out.Delays = append(out.Delays, HourDelays{Hour: h.Hour, Delays: sketch.New()})
		}
		return out.Delays[len(out.Delays)-1].Delays.MergeEncoded(h.Delays)
	})
	out.Platforms = sums.sorted()
	return out, err
}
