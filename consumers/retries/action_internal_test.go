package retries

import (
	"net/http"
	"testing"
	"time"

	"github.com/socialbridge/bridge/event"
)

func TestRetryable(t *testing.T) {
	yes, no := true, false
	code := func(s string) *string { return &s }
	cases := []struct {
		flag *bool
		code *string
		want bool
	}{
		{&no, code("rate_limited"), false},  // the record's flag wins
		{&yes, code("invalid_media"), true}, // … both ways
		{nil, code("Invalid_Media"), false}, // the table, any case
		{nil, code("rate_limited"), true},   // retryable code
		{nil, code("something_new"), true},  // unknown: the delays bound it
		{nil, nil, true},
	}
	for _, c := range cases {
		if got := retryable(c.flag, c.code); got != c.want {
			t.Errorf("retryable(%v, %v) = %v", c.flag, c.code, got)
		}
	}
}

func TestAnswer(t *testing.T) {
	now := time.Date(2026, 5, 8, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		code       int
		retryAfter string
		ok, perm   bool
		wait       time.Duration
	}{
		{200, "", true, false, 0},
		{204, "", true, false, 0},
		{404, "", false, true, 0},
		{422, "", false, true, 0},
		{401, "", false, false, 0},
		{500, "", false, false, 0},
		{429, "7", false, false, 7 * time.Second},
		{503, now.Add(90 * time.Second).Format(http.TimeFormat), false, false, 90 * time.Second},
		{503, "soon", false, false, 0},
		{500, "7", false, false, 0}, // Retry-After counts only on 429 and 503
	}
	for _, c := range cases {
		resp := &http.Response{StatusCode: c.code, Status: http.StatusText(c.code), Header: http.Header{}}
		if c.retryAfter != "" {
			resp.Header.Set("Retry-After", c.retryAfter)
		}
		r := answer(resp, now)
		if r.ok != c.ok || r.permanent != c.perm || r.retryAfter != c.wait {
			t.Errorf("%d %q: %+v", c.code, c.retryAfter, r)
		}
	}
}

func TestFill(t *testing.T) {
	post, profile := "p/1 ?&=", "brand"
	ev := &event.Event{ID: "evt_1", PostID: &post, ProfileName: &profile}
	got, err := fill("https://x/v1/posts/{post_id}/retry?e={event_id}&p={profile_name}", ev)
	if want := "https://x/v1/posts/p%2F1%20%3F%26%3D/retry?e=evt_1&p=brand"; err != nil || got != want {
		t.Errorf("fill = %q, %v; want %q", got, err, want)
	}
	if _, err := fill("https://x/{platform}", ev); err == nil {
		t.Error("a placeholder without a value was filled")
	}
}
