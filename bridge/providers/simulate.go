package providers

import (
	"bytes"
	"encoding/json"
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

// jsonDelivery is a delivery of v in compact JSON without HTML escaping, as providers send
// it: what a preset's Deliver then signs.
func jsonDelivery(v any) (Delivery, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return Delivery{}, err
	}
	h := http.Header{"Content-Type": {"application/json"}}
	return Delivery{Header: h, Body: bytes.TrimSuffix(b.Bytes(), []byte("\n"))}, nil
}

// httpHeader adapts an http.Header to Headers, for a simulator that reads what it signs.
type httpHeader http.Header

func (h httpHeader) Peek(key string) []byte { return []byte(http.Header(h).Get(key)) }
