package analytics

import (
	"context"
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"time"

	"github.com/socialbridge/bridge/consumers/analytics/sketch"
	"github.com/socialbridge/bridge/consumers/analytics/store"
)

// web holds the dashboard's template and assets: the binary serves them, nothing comes
// from elsewhere.
//
//go:embed web
var web embed.FS

var pageTemplate = template.Must(template.ParseFS(web, "web/dashboard.html"))

// maxDashboardSpan bounds the dashboard's range: its charts have a point per hour.
const maxDashboardSpan = 31 * 24 * time.Hour

// troubledProfiles is how many profiles the failures chart lists.
const troubledProfiles = 10

// page is what the dashboard template draws.
type page struct {
	From, To  string // the range, as the picker's UTC inputs show it
	Range     string // the range, in words
	Platform  string
	Platforms []string
	Presets   []preset
	Error     string
	Tiles     []tile
	Legend    []legendEntry
	Events    lineChart
	Success   lineChart
	Delays    lineChart
	Troubled  barChart
	Table     []platformRow
	DLQ       *dlqView // nil: no panel
}

type preset struct{ Label, URL string }

type tile struct{ Metric, Label, Value, Display string }

type legendEntry struct{ Name, Color string }

type platformRow struct {
	Platform                                 string
	Published, Failed, TokenExpired, Retries int64
	SuccessRate, P50, P95                    string
}

func (s *Service) dashboard(w http.ResponseWriter, r *http.Request) {
	now := s.now()
	win, err := parseWindow(r.URL.Query(), now, maxDashboardSpan)
	if err != nil {
		win, _ = parseWindow(nil, now, 0)
		s.render(w, http.StatusBadRequest, &page{Error: err.Error(), From: win.From.Format(localMinute), To: win.To.Format(localMinute), Presets: presets(now, "")})
		return
	}
	p, err := s.page(r.Context(), win, now)
	if err != nil {
		s.log.Error("analytics: dashboard query", "err", err)
		s.render(w, http.StatusServiceUnavailable, &page{Error: "The analytics database did not answer; reload to try again.", Presets: presets(now, win.Platform)})
		return
	}
	s.render(w, http.StatusOK, p)
}

func (s *Service) render(w http.ResponseWriter, code int, p *page) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	if err := pageTemplate.Execute(w, p); err != nil {
		s.log.Error("analytics: render dashboard", "err", err)
	}
}

// page reads the window's numbers, in one View so that they agree, and lays out the charts.
func (s *Service) page(ctx context.Context, win window, now time.Time) (*page, error) {
	var hours store.Hours
	var troubled []store.ProfileTotals
	err := s.store.View(ctx, func(v *store.View) (err error) {
		if hours, err = v.Hours(ctx, win.rng()); err != nil {
			return err
		}
		troubled, err = v.MostTroubled(ctx, win.rng(), troubledProfiles)
		return err
	})
	if err != nil {
		return nil, err
	}
	platforms := hours.Platforms
	p := &page{
		From: win.From.Format(localMinute), To: win.To.Format(localMinute), Platform: win.Platform,
		Range:    fmt.Sprintf("%s – %s UTC", win.From.Format("Jan 2 2006 15:04"), win.To.Format("Jan 2 2006 15:04")),
		Presets:  presets(now, win.Platform),
		Troubled: newBarChart("troubled", "Profiles with the most failures and token expiries", troubled),
	}
	colors := p.listPlatforms(platforms, win.Platform)
	p.summarize(platforms, win.Platform)
	p.Events = eventsChart(win, hours.Counts, colors)
	p.Success = successChart(win, hours.Counts)
	p.Delays = delayChart(win, hours.Delays)
	p.DLQ = s.dlq.view(ctx, now)
	return p, nil
}

// listPlatforms fills the picker and the legend, and gives each platform its colour.
func (p *page) listPlatforms(platforms []store.PlatformTotals, selected string) map[string]string {
	colors := map[string]string{}
	for i, pt := range platforms {
		p.Platforms = append(p.Platforms, pt.Platform)
		colors[pt.Platform] = palette[i%len(palette)]
		if selected == "" || selected == pt.Platform {
			p.Legend = append(p.Legend, legendEntry{pt.Platform, colors[pt.Platform]})
		}
	}
	return colors
}

// summarize fills the tiles and the table with the selected platforms' totals.
func (p *page) summarize(platforms []store.PlatformTotals, selected string) {
	var total store.Counts
	delays := sketch.New()
	for _, pt := range platforms {
		if selected != "" && selected != pt.Platform {
			continue
		}
		total.Published += pt.Published
		total.Failed += pt.Failed
		total.TokenExpired += pt.TokenExpired
		total.Retries += pt.Retries
		delays.Merge(pt.Delays)
		p.Table = append(p.Table, platformRow{
			Platform: pt.Platform, Published: pt.Published, Failed: pt.Failed, TokenExpired: pt.TokenExpired, Retries: pt.Retries,
			SuccessRate: percentText(pt.Counts), P50: quantileText(pt.Delays, 0.5), P95: quantileText(pt.Delays, 0.95),
		})
	}
	p.Tiles = []tile{
		countTile("published", "Published", total.Published),
		countTile("failed", "Failed", total.Failed),
		countTile("token_expired", "Token expired", total.TokenExpired),
		countTile("retries", "Retries", total.Retries),
		{Metric: "success_rate", Label: "Success rate", Value: rateNumber(total), Display: percentText(total)},
		quantileTile("publish_delay_p50_ms", "Publish delay p50", delays, 0.5),
		quantileTile("publish_delay_p95_ms", "Publish delay p95", delays, 0.95),
	}
}

func countTile(metric, label string, n int64) tile {
	return tile{Metric: metric, Label: label, Value: fmt.Sprint(n), Display: fmt.Sprint(n)}
}

func quantileTile(metric, label string, c *sketch.Counts, q float64) tile {
	t := tile{Metric: metric, Label: label, Display: "–"}
	if v, ok := c.Quantile(q); ok {
		t.Value, t.Display = millis.number(v), formatDuration(v)
	}
	return t
}

// successRate is published ÷ (published + failed + token expired), in percent: the share of
// posts that reached an outcome and went out. Retries are attempts on the way, not outcomes.
func successRate(c store.Counts) (float64, bool) {
	outcomes := c.Published + c.Failed + c.TokenExpired
	if outcomes == 0 {
		return 0, false
	}
	return 100 * float64(c.Published) / float64(outcomes), true
}

func rateNumber(c store.Counts) string {
	if v, ok := successRate(c); ok {
		return percents.number(v)
	}
	return ""
}

func percentText(c store.Counts) string {
	if v, ok := successRate(c); ok {
		return percents.label(v)
	}
	return "–"
}

func quantileText(c *sketch.Counts, q float64) string {
	if v, ok := c.Quantile(q); ok {
		return formatDuration(v)
	}
	return "–"
}

// presets are links to the last day, week and month, up to the end of the current hour.
func presets(now time.Time, platform string) []preset {
	to := ceilHour(now)
	var out []preset
	for _, p := range []struct {
		label string
		span  time.Duration
	}{{"24 hours", 24 * time.Hour}, {"7 days", 7 * 24 * time.Hour}, {"30 days", 30 * 24 * time.Hour}} {
		q := url.Values{"from": {to.Add(-p.span).Format(time.RFC3339)}, "to": {to.Format(time.RFC3339)}}
		if platform != "" {
			q.Set("platform", platform)
		}
		out = append(out, preset{Label: p.label, URL: "/analytics?" + q.Encode()})
	}
	return out
}
