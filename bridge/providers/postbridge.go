package providers

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/socialbridge/bridge/event"
)

// PostBridge is the preset of Post-Bridge (docs/providers.md, "Post-Bridge"), which sends no
// webhooks: its sources are polled (bridge/poll). Every poll lists the results of
// GET {base_url}/v1/post-results, newest first, with the source's API key as a bearer
// token; each result, a post's outcome on one account, is one event whose id is the
// result's own id. A POST to a Post-Bridge source is refused.
//
// Retry policy of the sender: none, there is no sender. A poll that fails is tried again at
// the next interval, from the same cursor.
type PostBridge struct{}

// pbPageSize is how many results a poll asks for at once.
const pbPageSize = 100

// Key takes the API key as it is.
func (PostBridge) Key(secret string) (*Key, error) { return rawKey("post-bridge", secret) }

// PageRequest asks for the results at offset, pbPageSize of them.
func (PostBridge) PageRequest(ctx context.Context, base, apiKey string, offset int) (*http.Request, error) {
	q := url.Values{"limit": {strconv.Itoa(pbPageSize)}, "offset": {strconv.Itoa(offset)}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+"/v1/post-results?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+apiKey)
	req.Header.Set("Accept", "application/json")
	return req, nil
}

type pbPage struct {
	Data []jsontext.Value `json:"data"`
	Meta *struct {
		Next jsontext.Value `json:"next"`
	} `json:"meta"`
}

// Page reads {"data": [results], "meta": {"next": …}}. More pages follow when the page is
// full and meta.next, if sent, is not null.
func (PostBridge) Page(body []byte) ([]Item, bool, error) {
	var p pbPage
	if err := unmarshalBody(body, &p); err != nil {
		return nil, false, err
	}
	if p.Data == nil {
		return nil, false, unnormalizable("not a page of results: want a data list")
	}
	items := make([]Item, len(p.Data))
	for i, raw := range p.Data {
		var r struct {
			ID jsontext.Value `json:"id"`
		}
		if err := unmarshal(raw, &r); err != nil {
			return nil, false, unnormalizable("data[%d]: %s", i, reasonOf(err))
		}
		if items[i].ID = scalarText(r.ID); items[i].ID == "" {
			return nil, false, unnormalizable("data[%d]: missing id", i)
		}
		items[i].Raw = raw
	}
	more := len(p.Data) >= pbPageSize && (p.Meta == nil || present(p.Meta.Next))
	return items, more, nil
}

type pbResult struct {
	ID              jsontext.Value `json:"id"`
	PostID          jsontext.Value `json:"post_id"`
	Success         *bool          `json:"success"`
	SocialAccountID jsontext.Value `json:"social_account_id"`
	Platform        string         `json:"platform"`
	Error           jsontext.Value `json:"error"`
	CreatedAt       string         `json:"created_at"`
	PlatformData    struct {
		ID       jsontext.Value `json:"id"`
		URL      string         `json:"url"`
		Username string         `json:"username"`
	} `json:"platform_data"`
}

// Normalize maps one result: success true as post.published, false as post.failed with its
// error (a string, or {message, code}).
func (PostBridge) Normalize(_ Headers, body []byte, ev *event.Event) error {
	reset(ev)
	var r pbResult
	if err := unmarshalBody(body, &r); err != nil {
		return err
	}
	if ev.ID = scalarText(r.ID); ev.ID == "" {
		return unnormalizable("missing event id")
	}
	if r.Success == nil {
		return unnormalizable("field \"success\": want a boolean, got none")
	}
	at, _ := time.Parse(time.RFC3339, r.CreatedAt)
	ev.OccurredAt, ev.PostID, ev.Platform = at.UTC(), ptr(scalarText(r.PostID)), ptr(r.Platform)
	ev.ProfileName = ptr(cmp.Or(r.PlatformData.Username, scalarText(r.SocialAccountID)))
	if !*r.Success {
		ev.Type = event.PostFailed
		ev.ErrorCode, ev.ErrorMessage = pbError(r.Error)
		return nil
	}
	ev.Type, ev.PlatformPostID, ev.PlatformPostURL = event.PostPublished, ptr(scalarText(r.PlatformData.ID)), ptr(r.PlatformData.URL)
	ev.PublishedAt = timePtr(ev.OccurredAt)
	return nil
}

func pbError(v jsontext.Value) (code, message *string) {
	if v.Kind() != '{' {
		return nil, ptr(errorText(v))
	}
	var e struct {
		Code    jsontext.Value `json:"code"`
		Message string         `json:"message"`
	}
	if unmarshal(v, &e) != nil {
		return nil, ptr(string(v))
	}
	return ptr(scalarText(e.Code)), ptr(e.Message)
}

// Types lists what a result becomes.
func (PostBridge) Types() []string { return []string{event.PostPublished, event.PostFailed} }

// Deliver renders ev as one result of the listing, as the poll reads it: the result's id is
// ev.ID. Nothing is signed, since nothing is POSTed.
func (PostBridge) Deliver(ev *event.Event, _ string, _ time.Time) (Delivery, error) {
	r := map[string]any{
		"id": ev.ID, "post_id": deref(ev.PostID), "social_account_id": 7, "platform": deref(ev.Platform),
		"created_at": ev.OccurredAt.UTC().Format(time.RFC3339), "success": true, "error": nil,
		"platform_data": map[string]any{"id": deref(ev.PlatformPostID), "url": deref(ev.PlatformPostURL), "username": deref(ev.ProfileName)},
	}
	switch ev.Type {
	case event.PostPublished:
	case event.PostFailed:
		r["success"], r["platform_data"] = false, map[string]any{"username": deref(ev.ProfileName)}
		r["error"] = map[string]any{"code": deref(ev.ErrorCode), "message": deref(ev.ErrorMessage)}
	default:
		return Delivery{}, fmt.Errorf("post-bridge: has no %s", ev.Type)
	}
	return jsonDelivery(r)
}
