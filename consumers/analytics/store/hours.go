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

// Hours reads r hour by hour. Each stored sketch is decoded once, then merged into its
// platform's totals and its hour's delays.
func (v *View) Hours(ctx context.Context, r Range) (Hours, error) {
	var out Hours
	var sums platformSums
	delays := sketch.New()
	all := r
	all.Platform = ""
	err := v.EachHour(ctx, all, func(h *PlatformHour) error {
		t := sums.of(h.Platform)
		t.add(h.Counts)
		selected := r.Platform == "" || r.Platform == h.Platform
		if selected {
			out.Counts = append(out.Counts, HourCounts{Hour: h.Hour, Platform: h.Platform, Counts: h.Counts})
		}
		if h.Delays == nil {
			return nil
		}
		delays.Reset()
		if err := delays.MergeEncoded(h.Delays); err != nil {
			return err
		}
		t.Delays.Merge(delays)
		if !selected {
			return nil
		}
		if n := len(out.Delays); n == 0 || !out.Delays[n-1].Hour.Equal(h.Hour) {
			out.Delays = append(out.Delays, HourDelays{Hour: h.Hour, Delays: sketch.New()})
		}
		out.Delays[len(out.Delays)-1].Delays.Merge(delays)
		return nil
	})
	out.Platforms = sums.sorted()
	return out, err
}
