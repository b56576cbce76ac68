package analytics

import (
	"github.com/socialbridge/bridge/consumers/analytics/store"
)

// eventsChart: all four kinds of event per hour, a line per platform.
func eventsChart(win window, hours []store.HourCounts, colors map[string]string) lineChart {
	byPlatform := map[string]map[int]float64{}
	var order []string
	a := axes{from: win.From}
	for _, h := range hours {
		vals := byPlatform[h.Platform]
		if vals == nil {
			vals = map[int]float64{}
			byPlatform[h.Platform] = vals
			order = append(order, h.Platform)
		}
		vals[a.index(h.Hour)] += float64(h.Published + h.Failed + h.TokenExpired + h.Retries)
	}
	var lines []hourly
	for _, name := range order {
		lines = append(lines, hourly{name: name, color: colors[name], values: byPlatform[name], zeroFill: true})
	}
	return newLineChart("events", "Events per hour by platform", win.From, win.hours(), lines, counts)
}

// successChart: the success rate of each hour with an outcome, all selected platforms together.
func successChart(win window, hours []store.HourCounts) lineChart {
	a := axes{from: win.From}
	perHour := map[int]store.Counts{}
	for _, h := range hours {
		c := perHour[a.index(h.Hour)]
		c.Published += h.Published
		c.Failed += h.Failed
		c.TokenExpired += h.TokenExpired
		perHour[a.index(h.Hour)] = c
	}
	rates := map[int]float64{}
	for i, c := range perHour {
		if v, ok := successRate(c); ok {
			rates[i] = v
		}
	}
	c := newLineChart("success", "Success rate per hour", win.From, win.hours(), []hourly{{name: "success rate", color: palette[2], values: rates}}, percents)
	c.Note = "published ÷ (published + failed + token expired)"
	return c
}

// delayChart: the p50 and p95 publish delay of each hour with delays; each hour's
// percentiles come from its buckets merged across the selected platforms and profiles.
func delayChart(win window, delays []store.HourDelays) lineChart {
	a := axes{from: win.From}
	p50, p95 := map[int]float64{}, map[int]float64{}
	for _, h := range delays {
		i := a.index(h.Hour)
		p50[i], _ = h.Delays.Quantile(0.5)
		p95[i], _ = h.Delays.Quantile(0.95)
	}
	c := newLineChart("delays", "Publish delay per hour", win.From, win.hours(),
		[]hourly{{name: "p50", color: palette[0], values: p50}, {name: "p95", color: palette[1], values: p95}}, millis)
	c.Note = "published_at − scheduled_at"
	c.Legend = []legendEntry{{"p50", palette[0]}, {"p95", palette[1]}}
	return c
}
