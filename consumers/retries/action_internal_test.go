package retries

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/socialbridge/bridge/event"
)

// TestRetryable pins the documented tables (docs/consumers.md, retries, step 1): each of
// the 14 permanent codes, in any case, goes to the DLQ; the retryable codes and unknown
// ones are retried; the record's own flag wins both ways.
func TestRetryable(t *testing.T) {
	yes, no := true, false
	code := func(s string) *string { return &s }
	permanent := []string{"invalid_media", "media_invalid", "media_too_large", "unsupported_media", "invalid_post",
		"content_rejected", "policy_violation", "duplicate_content", "token_expired", "token_revoked",
		"access_revoked", "account_disconnected", "permission_denied", "unauthorized"}
	for _, c := range permanent {
		if retryable(nil, code(c)) || retryable(nil, code(strings.ToUpper(c))) {
			t.Errorf("error code %q is retried, want it permanent", c)
		}
		if !retryable(&yes, code(c)) {
			t.Errorf("retryable: true with code %q is not retried: the record's flag must win", c)
		}
	}
	retried := []string{"rate_limited", "rate_limit_exceeded", "too_many_requests", "timeout", "timed_out",
		"upload_timeout", "platform_error", "platform_unavailable", "server_error", "internal_error",
		"service_unavailable", "temporarily_unavailable", "network_error", "something_new", ""}
	for _, c := range retried {
		if !retryable(nil, code(c)) {
			t.Errorf("error code %q is not retried", c)
		}
		if retryable(&no, code(c)) {
			t.Errorf("retryable: false with code %q is retried: the record's flag must win", c)
		}
	}
	if !retryable(nil, nil) {
		t.Error("no flag and no code: not retried")
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
		{299, "", true, false, 0},
		{300, "", false, false, 0}, // the edges of 2xx: 300 is no success
		{199, "", false, false, 0},
		{400, "", false, true, 0},
		{404, "", false, true, 0},
		{410, "", false, true, 0},
		{422, "", false, true, 0},
		{401, "", false, false, 0},
		{403, "", false, false, 0},
		{409, "", false, false, 0},
		{429, "", false, false, 0},
		{302, "", false, false, 0},
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

// TestEscapeEdges: the unreserved characters of RFC 3986 stay as they are, up to the ends of
// each range, and the characters just outside each range are percent-encoded.
func TestEscapeEdges(t *testing.T) {
	if got, want := escape("azAZ09-._~"), "azAZ09-._~"; got != want {
		t.Errorf("escape(unreserved) = %q; want %q", got, want)
	}
	if got, want := escape("`{@[/:"), "%60%7B%40%5B%2F%3A"; got != want {
		t.Errorf("escape(the neighbours of the ranges) = %q; want %q", got, want)
	}
}
