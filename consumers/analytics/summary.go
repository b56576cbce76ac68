package analytics

import (
	"math"
	"net/http"
	"time"

	"github.com/socialbridge/bridge/consumers/analytics/store"
)

// summaryJSON is the answer of GET /analytics/api/summary (docs/analytics.md).
type summaryJSON struct {
	From      string         `json:"from"`
	To        string         `json:"to"`
	Totals    countsJSON     `json:"totals"`
	Platforms []platformJSON `json:"platforms"`
}

type countsJSON struct {
	Published    int64 `json:"published"`
	Failed       int64 `json:"failed"`
	TokenExpired int64 `json:"token_expired"`
	Retries      int64 `json:"retries"`
}

// platformJSON's percentiles are whole milliseconds, null when the platform has no
// post.published event with both scheduled_at and published_at in the range.
type platformJSON struct {
	Platform string `json:"platform"`
	countsJSON
	P50 *int64 `json:"publish_delay_p50_ms"`
	P95 *int64 `json:"publish_delay_p95_ms"`
}

func (s *Service) summary(w http.ResponseWriter, r *http.Request) {
	win, err := parseWindow(r.URL.Query(), s.now(), 0)
	if err != nil {
		badRequest(w, err)
		return
	}
	ps, err := s.store.ByPlatform(r.Context(), win.rng())
	if err != nil {
		s.unavailable(w, err)
		return
	}
	writeJSON(w, http.StatusOK, newSummary(win, ps))
}

func newSummary(win window, ps []store.PlatformTotals) summaryJSON {
	out := summaryJSON{From: win.From.Format(time.RFC3339), To: win.To.Format(time.RFC3339), Platforms: []platformJSON{}}
	for _, p := range ps {
		c := countsOf(p.Counts)
		out.Totals.add(c)
		out.Platforms = append(out.Platforms, platformJSON{
			Platform: p.Platform, countsJSON: c,
			P50: percentile(p, 0.5), P95: percentile(p, 0.95),
		})
	}
	return out
}

func countsOf(c store.Counts) countsJSON {
	return countsJSON{Published: c.Published, Failed: c.Failed, TokenExpired: c.TokenExpired, Retries: c.Retries}
}

func (c *countsJSON) add(o countsJSON) {
	c.Published += o.Published
	c.Failed += o.Failed
	c.TokenExpired += o.TokenExpired
	c.Retries += o.Retries
}

func percentile(p store.PlatformTotals, q float64) *int64 {
	v, ok := p.Delays.Quantile(q)
	if !ok {
		return nil
	}
	ms := int64(math.Round(v))
	return &ms
}
