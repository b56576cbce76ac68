package analytics

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/consumers/analytics/internal/dbtest"
	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/internal/kafkatest"
	"github.com/socialbridge/bridge/internal/redrive"
	"github.com/socialbridge/bridge/internal/testenv"
	"github.com/socialbridge/bridge/schemas"
)

// deadLetter is a record of the dead-letter topic as the retries group writes it: a failed
// post, with error code code ("" for none), dead-lettered age ago.
func deadLetter(t *testing.T, prefix, id, code string, age time.Duration) *kgo.Record {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Millisecond)
	post, platform := "post_"+id, "instagram"
	ev := &event.Event{ID: id, Type: event.PostFailed, Source: "codiv", Provider: "codivupload", OccurredAt: now, ReceivedAt: now,
		Raw: []byte(`{"id":"` + id + `"}`), PostID: &post, Platform: &platform}
	if code != "" {
		ev.ErrorCode = &code
	}
	enc, err := schemas.NewSingleObject()
	if err != nil {
		t.Fatal(err)
	}
	v, err := enc.Encode(nil, ev)
	if err != nil {
		t.Fatal(err)
	}
	return &kgo.Record{Topic: event.DLQTopic(prefix), Key: []byte(id), Value: v, Timestamp: now.Add(-age),
		Headers: []kgo.RecordHeader{{Key: "event-type", Value: []byte(ev.Type)}}}
}

// TestDashboardDLQPanelInChromium: the dashboard's dead-letter panel shows, read back from
// the DOM in headless Chromium, the topic's records by error code and by age, and of each
// how many were redriven (one, by a real redrive) and how many wait.
func TestDashboardDLQPanelInChromium(t *testing.T) {
	chromium := testenv.Require(t, testenv.Chromium)
	k := newTestKafka(t)
	cfg := k.config(dbtest.New(t, "sqlite"))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	kafkatest.CreateTopic(t, kadm.NewClient(k.client), event.DLQTopic(k.prefix), 1)
	if err := k.client.ProduceSync(ctx,
		deadLetter(t, k.prefix, "evt_d1", "rate_limited", 5*time.Minute),
		deadLetter(t, k.prefix, "evt_d2", "rate_limited", 2*time.Hour),
		deadLetter(t, k.prefix, "evt_d3", "invalid_media", 30*time.Minute),
		deadLetter(t, k.prefix, "evt_d4", "", 3*24*time.Hour),
	).FirstErr(); err != nil {
		t.Fatal(err)
	}
	d, err := redrive.NewDLQ(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if res, _, err := d.Redrive(ctx, redrive.Filter{IDs: []string{"evt_d1"}}, false); err != nil || res.Redriven != 1 {
		t.Fatalf("redrive evt_d1: %+v, %v", res, err)
	}
	s := startService(t, cfg, Options{})

	tab, requests := browser(t, chromium)
	if err := chromedp.Do(tab, chromedp.Navigate("http://"+s.Addr()+"/analytics?platform="), chromedp.WaitVisible("#dlq")); err != nil {
		t.Fatal(err)
	}
	type panel struct {
		Records, Redriven string
		Errors, Ages      map[string][]string // key → records, redriven, waiting
	}
	const readPanel = `(() => {
  const rows = id => Object.fromEntries([...document.querySelectorAll('#' + id + ' tbody tr[data-key]')].map(
    r => [r.dataset.key, [...r.cells].slice(1).map(c => c.textContent)]));
  const p = document.querySelector('#dlq');
  return {Records: p.dataset.records, Redriven: p.dataset.redriven, Errors: rows('dlq-errors'), Ages: rows('dlq-ages')};
})()`
	got, err := chromedp.Run(tab, chromedp.Evaluate[panel](readPanel))
	if err != nil {
		t.Fatal(err)
	}
	if got.Records != "4" || got.Redriven != "1" {
		t.Errorf("panel says %s records, %s redriven; want 4, 1", got.Records, got.Redriven)
	}
	check := func(table string, rows map[string][]string, want map[string]string) {
		for key, w := range want {
			if g := rows[key]; len(g) != 3 || g[0]+"/"+g[1]+"/"+g[2] != w {
				t.Errorf("%s row %q: %q, want records/redriven/waiting %s", table, key, g, w)
			}
		}
		if len(rows) != len(want) {
			t.Errorf("%s rows %q, want %d", table, rows, len(want))
		}
	}
	check("by error", got.Errors, map[string]string{"rate_limited": "2/1/1", "invalid_media": "1/0/1", "": "1/0/1"})
	check("by age", got.Ages, map[string]string{"< 1h": "2/1/1", "1h – 24h": "1/0/1", "1d – 7d": "1/0/1", "≥ 7d": "0/0/0"})
	png, err := chromedp.Run(tab, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	saveScreenshot(t, png, filepath.Base(t.Name()))
	checkLoopback(t, requests(), s.Addr())
}

// TestAnalyticsSkipsRedrivenRecords: a redrive moves a dead letter back to the first retry
// topic; the analytics group does not read it there, so it counts nothing of it again.
func TestAnalyticsSkipsRedrivenRecords(t *testing.T) {
	const prefix = "p."
	retry1 := event.RetryTopic(prefix, 1)
	for _, typ := range Types {
		if event.Topic(prefix, typ) == retry1 {
			t.Errorf("analytics reads %s, where redriven records go: it would count them again", retry1)
		}
	}
	if !slices.Contains(Types, event.PostFailed) {
		t.Error("analytics no longer reads post.failed: this test's check of its topics is out of date")
	}
}
