package providers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/socialbridge/bridge/bridge/failure"
	"github.com/socialbridge/bridge/bridge/providers"
	"github.com/socialbridge/bridge/event"
)

func TestPostBridgePage(t *testing.T) {
	p := mustNew(t, "post-bridge").(providers.Poller)
	body, _ := sample(t, "post-bridge", "page")
	items, more, err := p.Page(body)
	if err != nil || more || len(items) != 3 {
		t.Fatalf("Page = %d items, more %t, %v", len(items), more, err)
	}
	want := []struct {
		id, typ, code, message string
	}{
		{"pr_3", event.PostFailed, "rate_limited", "TikTok rate limit reached"},
		{"pr_2", event.PostPublished, "", ""},
		{"pr_1", event.PostFailed, "", "Instagram posts need media"},
	}
	for i, w := range want {
		var ev event.Event
		if err := p.Normalize(headers{}, items[i].Raw, &ev); err != nil {
			t.Fatal(err)
		}
		if items[i].ID != w.id || ev.ID != w.id || ev.Type != w.typ || deref(ev.ErrorCode) != w.code || deref(ev.ErrorMessage) != w.message {
			t.Errorf("item %d: id %s, event %+v", i, items[i].ID, ev)
		}
	}
	var ev event.Event
	_ = p.Normalize(headers{}, items[1].Raw, &ev)
	if *ev.PlatformPostURL != "https://instagram.com/p/Cabc123/" || *ev.ProfileName != "brand" || *ev.PostID != "post_9" || !ev.OccurredAt.Equal(time.Date(2026, 1, 1, 0, 1, 0, 0, time.UTC)) {
		t.Errorf("published result: %+v", ev)
	}
}

func TestPostBridgePaging(t *testing.T) {
	p := mustNew(t, "post-bridge").(providers.Poller)
	full := func(meta string) []byte {
		var b strings.Builder
		b.WriteString(`{"data":[`)
		for i := range 100 {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"id":%d,"success":true}`, i)
		}
		return []byte(b.String() + "]" + meta + "}")
	}
	for _, c := range []struct {
		body []byte
		more bool
	}{
		{full(""), true},
		{full(`,"meta":{"next":"/v1/post-results?offset=100"}`), true},
		{full(`,"meta":{"next":null}`), false},
		{[]byte(`{"data":[]}`), false},
	} {
		if _, more, err := p.Page(c.body); err != nil || more != c.more {
			t.Errorf("more = %t, %v; want %t", more, err, c.more)
		}
	}
	for _, bad := range []string{`[]`, `{}`, `{"data":[{"success":true}]}`, `{"data":[{"id":{}}]}`, `{"data":`} {
		_, _, err := p.Page([]byte(bad))
		if failure.KindOf(err) != failure.Unnormalizable {
			t.Errorf("Page(%s) = %v, want an Unnormalizable error", bad, err)
		}
	}
	req, err := p.PageRequest(context.Background(), "https://api.post-bridge.com/", "pb_live_key", 200)
	if err != nil || req.URL.String() != "https://api.post-bridge.com/v1/post-results?limit=100&offset=200" || req.Header.Get("Authorization") != "Bearer pb_live_key" {
		t.Fatalf("PageRequest = %v %v", req.URL, err)
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
