package analytics

import (
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/socialbridge/bridge/consumers/analytics/internal/dbtest"
	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/internal/kafkatest"
)

// expectIn is the expectation for the events of the hours [from, to) and, if not empty, one
// platform.
func expectIn(events []event.Event, from, to time.Time, platform string) expectation {
	var in []event.Event
	for _, ev := range events {
		if ev.OccurredAt.Before(from) || !ev.OccurredAt.Before(to) {
			continue
		}
		if platform != "" && platformOf(&ev) != platform {
			continue
		}
		in = append(in, ev)
	}
	return expect(in)
}

// checkSummary compares an answer of GET /analytics/api/summary, decoded as generic JSON so
// that its exact shape is checked too, with e.
func checkSummary(t *testing.T, got map[string]any, from, to time.Time, e expectation) {
	t.Helper()
	keys := func(m map[string]any) string { return strings.Join(slices.Sorted(maps.Keys(m)), ",") }
	if k := keys(got); k != "from,platforms,to,totals" {
		t.Fatalf("summary keys %s: %v", k, got)
	}
	if got["from"] != from.Format(time.RFC3339) || got["to"] != to.Format(time.RFC3339) {
		t.Errorf("range %v – %v, want %s – %s", got["from"], got["to"], from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	var total [4]float64
	names := slices.Sorted(maps.Keys(e.counts))
	platforms := got["platforms"].([]any)
	if len(platforms) != len(names) {
		t.Fatalf("%d platforms, want %v: %v", len(platforms), names, platforms)
	}
	for i, name := range names {
		p := platforms[i].(map[string]any)
		if k := keys(p); k != "failed,platform,publish_delay_p50_ms,publish_delay_p95_ms,published,retries,token_expired" {
			t.Fatalf("platform keys %s", k)
		}
		c := e.counts[name]
		want := [4]float64{float64(c.Published), float64(c.Failed), float64(c.TokenExpired), float64(c.Retries)}
		gotC := [4]float64{p["published"].(float64), p["failed"].(float64), p["token_expired"].(float64), p["retries"].(float64)}
		if p["platform"] != name || gotC != want {
			t.Errorf("platform %v: %v, want %s: %v", p["platform"], gotC, name, want)
		}
		for j := range total {
			total[j] += want[j]
		}
		for _, q := range []struct {
			key string
			q   float64
		}{{"publish_delay_p50_ms", 0.5}, {"publish_delay_p95_ms", 0.95}} {
			v, ok := p[q.key].(float64)
			if len(e.delays[name]) == 0 {
				if p[q.key] != nil {
					t.Errorf("%s: %s = %v without delays, want null", name, q.key, p[q.key])
				}
				continue
			}
			if exact := exactPercentile(e.delays[name], q.q); !ok || !closeTo(v, exact) {
				t.Errorf("%s: %s = %v, want %.0f ±1%%", name, q.key, p[q.key], exact)
			}
		}
	}
	tt := got["totals"].(map[string]any)
	if k := keys(tt); k != "failed,published,retries,token_expired" {
		t.Fatalf("totals keys %s", k)
	}
	if g := [4]float64{tt["published"].(float64), tt["failed"].(float64), tt["token_expired"].(float64), tt["retries"].(float64)}; g != total {
		t.Errorf("totals %v, want %v", g, total)
	}
}

// TestSummary feeds known events through Kafka to the consumer and checks the summary of
// several ranges and platforms against counts and exact percentiles computed from the events.
func TestSummary(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, database string) {
		k := newTestKafka(t)
		events := knownEvents(3000, 30, 1)
		k.produce(t, events, 3)
		s := startService(t, k.config(database), Options{MaxBatch: 500})
		waitCounted(t, openStore(t, database), k.ends(t))

		for _, c := range []struct {
			from, to time.Time
			platform string
		}{
			{hour0, hour0.Add(30 * time.Hour), ""},
			{hour0.Add(-5 * time.Hour), hour0.Add(48 * time.Hour), "tiktok"},
			{hour0.Add(3 * time.Hour), hour0.Add(4 * time.Hour), ""},
			{hour0.Add(6 * time.Hour), hour0.Add(30 * time.Hour), Unknown},
			{hour0.Add(40 * time.Hour), hour0.Add(50 * time.Hour), ""},
		} {
			q := url.Values{"from": {c.from.Format(time.RFC3339)}, "to": {c.to.Format(time.RFC3339)}}
			if c.platform != "" {
				q.Set("platform", c.platform)
			}
			var got map[string]any
			if code := get(t, s, "/analytics/api/summary?"+q.Encode(), &got); code != http.StatusOK {
				t.Fatalf("%v: %d %v", q, code, got)
			}
			checkSummary(t, got, c.from, c.to, expectIn(events, c.from, c.to, c.platform))
		}
	})
}

// TestSummaryParameters: ranges widen to whole hours, defaults are the last 24 hours, and
// every bad parameter is a JSON 400 that says what is wrong.
func TestSummaryParameters(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	k := testKafka{brokers: kafkatest.Brokers(t), prefix: kafkatest.Prefix(t)}
	s, err := New(t.Context(), k.config(dbtest.New(t, "sqlite")), slog.New(slog.DiscardHandler), Options{Listener: ln})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	s.now = func() time.Time { return time.Date(2026, 5, 8, 14, 25, 0, 0, time.UTC) }
	for _, c := range []struct {
		query, status, want string
	}{
		{"", "200", `"from":"2026-05-07T15:00:00Z","to":"2026-05-08T15:00:00Z"`},
		{"from=&to=&platform=", "200", `"from":"2026-05-07T15:00:00Z","to":"2026-05-08T15:00:00Z"`},
		{"from=2026-05-08T10:30:00%2B02:00&to=2026-05-08T12:00:01Z", "200", `"from":"2026-05-08T08:00:00Z","to":"2026-05-08T13:00:00Z"`},
		{"to=2026-05-01T00:00:00Z&platform=x", "200", `"from":"2026-04-30T00:00:00Z","to":"2026-05-01T00:00:00Z","totals":{"published":0,"failed":0,"token_expired":0,"retries":0},"platforms":[]`},
		{"from=2026-05-08T09:00", "200", `"from":"2026-05-08T09:00:00Z"`},
		{"from=yesterday", "400", `"error":"from: want an RFC 3339 time such as 2026-05-08T14:00:00Z, got \"yesterday\""`},
		{"to=2026-13-01T00:00:00Z", "400", `"error":"to: want an RFC 3339 time`},
		{"from=2026-05-08T12:00:00Z&to=2026-05-08T12:00:00Z", "400", `"error":"from (2026-05-08T12:00:00Z) must be before to (2026-05-08T12:00:00Z)"`},
		{"form=2026-05-08T12:00:00Z", "400", `"error":"unknown parameter \"form\" (known: from, to, platform)"`},
		{"platform=a&platform=b", "400", `"error":"platform: given 2 times"`},
		{"platform=" + strings.Repeat("x", 101), "400", `"error":"platform: longer than 100 bytes`},
	} {
		rec := httptest.NewRecorder()
		s.routes().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/analytics/api/summary?"+c.query, nil))
		body := rec.Body.String()
		if fmt.Sprint(rec.Code) != c.status || !strings.Contains(body, c.want) || rec.Header().Get("Content-Type") != "application/json" {
			t.Errorf("?%s: %d %s %s, want %s with %s", c.query, rec.Code, rec.Header().Get("Content-Type"), body, c.status, c.want)
		}
		if c.status == "400" && !strings.Contains(body, `"status":"bad_request"`) {
			t.Errorf("?%s: %s has no status", c.query, body)
		}
	}
	rec := httptest.NewRecorder()
	s.routes().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/analytics?from=2026-05-01T00:00:00Z&to=2026-06-15T00:00:00Z", nil))
	if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "at most 744h0m0s") {
		t.Errorf("dashboard over 31 days: %d %s", rec.Code, rec.Body.String())
	}
}
