package analytics

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/socialbridge/bridge/consumers/analytics/store"
)

// defaultSpan is the range asked for when from is not given: the last 24 hours.
const defaultSpan = 24 * time.Hour

// maxPlatformLen bounds the platform parameter; no platform name is near it.
const maxPlatformLen = 100

// localMinute is what an HTML datetime-local input sends; the dashboard labels it UTC.
const localMinute = "2006-01-02T15:04"

// window is the range of a request: the whole UTC hours From ≤ hour < To, of one platform or
// (Platform empty) all.
type window struct {
	From, To time.Time
	Platform string
}

func (w window) rng() store.Range { return store.Range{From: w.From, To: w.To, Platform: w.Platform} }

func (w window) hours() int { return int(w.To.Sub(w.From) / time.Hour) }

var knownParams = []string{"from", "to", "platform"}

// parseWindow reads from, to (RFC 3339, or YYYY-MM-DDTHH:MM taken as UTC) and platform, all
// optional (an empty value is the same as none): to defaults to the end of the current hour,
// from to 24 hours before to, platform to all. The range widens to whole hours (from down,
// to up), since the aggregates are hourly; the answer says which range it counted. maxSpan,
// if not 0, bounds the range. Every error is the caller's: answer it 400.
func parseWindow(q url.Values, now time.Time, maxSpan time.Duration) (window, error) {
	for name, vs := range q {
		if !slices.Contains(knownParams, name) {
			return window{}, fmt.Errorf("unknown parameter %q (known: %s)", name, strings.Join(knownParams, ", "))
		}
		if len(vs) > 1 {
			return window{}, fmt.Errorf("%s: given %d times", name, len(vs))
		}
	}
	w := window{To: ceilHour(now), Platform: q.Get("platform")}
	var err error
	if q.Get("to") != "" {
		if w.To, err = parseTime("to", q.Get("to")); err != nil {
			return window{}, err
		}
		w.To = ceilHour(w.To)
	}
	w.From = w.To.Add(-defaultSpan)
	if q.Get("from") != "" {
		if w.From, err = parseTime("from", q.Get("from")); err != nil {
			return window{}, err
		}
		w.From = w.From.Truncate(time.Hour)
	}
	if !w.From.Before(w.To) {
		return window{}, fmt.Errorf("from (%s) must be before to (%s)", w.From.Format(time.RFC3339), w.To.Format(time.RFC3339))
	}
	if maxSpan > 0 && w.To.Sub(w.From) > maxSpan {
		return window{}, fmt.Errorf("from and to span %s; at most %s", w.To.Sub(w.From), maxSpan)
	}
	if len(w.Platform) > maxPlatformLen {
		return window{}, fmt.Errorf("platform: longer than %d bytes; want a platform name such as instagram", maxPlatformLen)
	}
	return w, nil
}

func parseTime(name, v string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		t, err = time.Parse(localMinute, v)
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: want an RFC 3339 time such as 2026-05-08T14:00:00Z, got %q", name, v)
	}
	return t.UTC(), nil
}

func ceilHour(t time.Time) time.Time {
	h := t.UTC().Truncate(time.Hour)
	if h.Before(t) {
		h = h.Add(time.Hour)
	}
	return h
}
