package ingress_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/socialbridge/bridge/bridge/ingress"
	"github.com/socialbridge/bridge/bridge/providers"
)

// dated is a codivupload delivery of id whose signed timestamp is at.
func dated(id string, at time.Time) string {
	return `{"event":"post.published","id":"` + id + `","timestamp":"` + at.Format(time.RFC3339Nano) +
		`","data":{"post_id":"p1","platform":"x"}}`
}

// TestMaxAgeEdges: a source with max_age takes a delivery signed exactly max_age ago, or
// exactly providers.ClockSkew ahead, and refuses one a nanosecond past either as a replay
// (401), counted in bridge_stale_deliveries_total, whose series is there from the start.
func TestMaxAgeEdges(t *testing.T) {
	now := time.Date(2026, 5, 8, 14, 0, 0, 0, time.UTC)
	const maxAge = 10 * time.Minute
	srv := serve(t, func(o *ingress.Options) {
		o.Now = func() time.Time { return now }
		o.Sources[0].MaxAge = maxAge
	})
	if m := srv.metricsText(t); !strings.Contains(m, `bridge_stale_deliveries_total{source="codivupload"} 0`) {
		t.Errorf("before any replay:\n%s", grepLines(m, "bridge_stale_deliveries_total"))
	}
	for i, c := range []struct {
		at   time.Time
		code int
		want string
	}{
		{now.Add(-maxAge), 200, `"status":"accepted"`},
		{now.Add(-maxAge - time.Nanosecond), 401, "older than this source's max_age"},
		{now.Add(providers.ClockSkew), 200, `"status":"accepted"`},
		{now.Add(providers.ClockSkew + time.Nanosecond), 401, "ahead of the bridge's clock"},
	} {
		code, got, _ := send(t, srv, http.MethodPost, dated(fmt.Sprintf("evt_at_%d", i), c.at))
		if code != c.code || !strings.Contains(got, c.want) {
			t.Errorf("signed at now%+v: answered %d %s, want %d %s", c.at.Sub(now), code, got, c.code, c.want)
		}
	}
	if m := srv.metricsText(t); !strings.Contains(m, `bridge_stale_deliveries_total{source="codivupload"} 2`) {
		t.Errorf("after two replays:\n%s", grepLines(m, "bridge_stale_deliveries_total"))
	}
}

// TestNoMaxAgeNoReplayCheck: without max_age a delivery's signed time is not checked (a
// year-old one is accepted), and no stale series is made for the source.
func TestNoMaxAgeNoReplayCheck(t *testing.T) {
	now := time.Date(2026, 5, 8, 14, 0, 0, 0, time.UTC)
	srv := serve(t, func(o *ingress.Options) { o.Now = func() time.Time { return now } })
	code, got, _ := send(t, srv, http.MethodPost, dated("evt_old", now.AddDate(-1, 0, 0)))
	if code != 200 || !strings.Contains(got, `"status":"accepted"`) {
		t.Errorf("a year-old delivery without max_age answered %d %s, want 200 accepted", code, got)
	}
	if m := srv.metricsText(t); strings.Contains(m, "bridge_stale_deliveries_total{") {
		t.Errorf("a stale series for a source without max_age:\n%s", grepLines(m, "bridge_stale_deliveries_total"))
	}
}
