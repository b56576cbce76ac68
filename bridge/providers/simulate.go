package providers

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/socialbridge/bridge/event"
)

// Delivery is one HTTP request as a provider sends it: POSTed to /webhooks/{source}
// followed by Path.
type Delivery struct {
	Path   string // "" for most presets; "/{token}" for the presets authenticated by URL token
	Header http.Header
	Body   []byte
}

// Simulator renders canonical events as a provider's own deliveries, signed as the provider
// signs them: what `bridge simulate` sends and what tests verify against. Every registered
// preset implements it (a test checks), so a new preset comes with its samples.
type Simulator interface {
	// Types lists the canonical event types the provider sends, in event.Types order.
	Types() []string
	// Deliver renders ev, one of Types, as the provider would deliver it at now, signed
	// with secret (a configured secret, as Key takes it). The same ev and now always give
	// the same event id once normalized, and events of different ids give different ones.
	Deliver(ev *event.Event, secret string, now time.Time) (Delivery, error)
}

// canonicalData is ev's typed fields under their canonical names, the data object of the
// presets whose bodies use those names. Absent fields are left out.
func canonicalData(ev *event.Event) map[string]any {
	d := map[string]any{}
	str := func(name string, v *string) {
		if v != nil {
			d[name] = *v
		}
	}
	tm := func(name string, v *time.Time) {
		if v != nil {
			d[name] = v.UTC().Format(time.RFC3339)
		}
	}
	str("post_id", ev.PostID)
	str("profile_name", ev.ProfileName)
	str("platform", ev.Platform)
	str("platform_post_id", ev.PlatformPostID)
	str("platform_post_url", ev.PlatformPostURL)
	tm("scheduled_at", ev.ScheduledAt)
	tm("published_at", ev.PublishedAt)
	str("error_code", ev.ErrorCode)
	str("error_message", ev.ErrorMessage)
	if ev.Retryable != nil {
		d["retryable"] = *ev.Retryable
	}
	if ev.Attempt != nil {
		d["attempt"] = *ev.Attempt
	}
	tm("next_attempt_at", ev.NextAttemptAt)
	str("reconnect_url", ev.ReconnectURL)
	str("comment_id", ev.CommentID)
	str("author_id", ev.AuthorID)
	str("author_name", ev.AuthorName)
	str("text", ev.Text)
	str("account_id", ev.AccountID)
	str("follower_id", ev.FollowerID)
	str("follower_name", ev.FollowerName)
	return d
}

// compactJSON encodes v as compact JSON without HTML escaping, as providers send it.
func compactJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// Sample returns a realistic canonical event of type t with id, happening at at. Its post,
// profile and platform are picked by n, so that a run of samples spreads over a few
// profiles and platforms the way real traffic does; the same arguments give the same event.
func Sample(t, id string, at time.Time, n int) *event.Event {
	platforms := []string{"instagram", "tiktok", "linkedin", "youtube", "facebook", "x"}
	profiles := []string{"main", "brand_eu", "brand_us", "support"}
	platform, profile := platforms[n%len(platforms)], profiles[(n/len(platforms))%len(profiles)]
	postID := fmt.Sprintf("post_%08x", uint32(n)*2654435761)
	at = at.UTC().Truncate(time.Second)
	scheduled := at.Add(-time.Duration(30+n%90) * time.Second)
	ev := &event.Event{ID: id, Type: t, OccurredAt: at, PostID: &postID, ProfileName: &profile, Platform: &platform}
	switch t {
	case event.PostPublished:
		ppid := fmt.Sprintf("%d", 17890000000000+n)
		url := fmt.Sprintf("https://%s.example/p/%s", platform, ppid)
		ev.ScheduledAt, ev.PublishedAt, ev.PlatformPostID, ev.PlatformPostURL = &scheduled, &at, &ppid, &url
	case event.PostFailed:
		code, msg, retryable, attempt := failureSample(n)
		ev.ScheduledAt, ev.ErrorCode, ev.ErrorMessage, ev.Retryable, ev.Attempt = &scheduled, &code, &msg, &retryable, &attempt
	case event.PostTokenExpired:
		url := fmt.Sprintf("https://app.example/profiles/%s/reconnect/%s", profile, platform)
		ev.ScheduledAt, ev.ReconnectURL = &scheduled, &url
	case event.PostRetry:
		attempt, next := int32(2+n%3), at.Add(5*time.Minute)
		ev.ScheduledAt, ev.Attempt, ev.NextAttemptAt = &scheduled, &attempt, &next
	case event.CommentReceived:
		cid, author, name, text := fmt.Sprintf("c_%d", n), fmt.Sprintf("u_%d", 1000+n%50), fmt.Sprintf("fan%d", n%50), "Love this post!"
		ev.CommentID, ev.AuthorID, ev.AuthorName, ev.Text = &cid, &author, &name, &text
	case event.FollowerGained, event.FollowerLost:
		acct, fid, fname := "acct_"+profile, fmt.Sprintf("f_%d", 5000+n), fmt.Sprintf("follower%d", n)
		ev.PostID, ev.AccountID, ev.FollowerID, ev.FollowerName = nil, &acct, &fid, &fname
	}
	return ev
}

func failureSample(n int) (code, msg string, retryable bool, attempt int32) {
	switch n % 3 {
	case 0:
		return "rate_limited", "rate limit reached, try again later", true, 1
	case 1:
		return "platform_unavailable", "the platform answered 503", true, 1
	}
	return "invalid_media", "the video's aspect ratio is not supported", false, 1
}
