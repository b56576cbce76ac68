package providers

import (
	"fmt"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/socialbridge/bridge/event"
)

// Postiz is the preset of Postiz's webhooks (docs/providers.md, "Postiz"). Postiz signs
// nothing and has nowhere to keep a secret, so a delivery is authenticated by the token that
// ends its URL (see Unsigned). It sends a webhook only after a post is published, and the
// body is a JSON list of posts (0 or 1 in practice, 2 for the UI's test): each is its own
// event, with an id derived from the post's id and release URL. Postiz today sends an empty
// list (gitroomhq/postiz-app#1861); that is answered 200 "ignored" and produces nothing.
//
// Retry policy of the sender: none in effect. The call is made once and any answer, even a
// 5xx, counts as done, so a delivery refused or lost is not sent again.
type Postiz struct{}

var postizToken = urlToken{"postiz"}

// Key accepts a URL token: at least 16 characters of the URL alphabet.
func (Postiz) Key(secret string) (*Key, error) { return postizToken.Key(secret) }

// VerifyToken checks the URL's token against the source's secrets in constant time.
func (Postiz) VerifyToken(token []byte, keys []*Key) error {
	return postizToken.VerifyToken(token, keys)
}

type postizPost struct {
	ID          string `json:"id"`
	PublishDate string `json:"publishDate"`
	ReleaseURL  string `json:"releaseURL"`
	State       string `json:"state"`
	Integration struct {
		Name               string `json:"name"`
		ProviderIdentifier string `json:"providerIdentifier"`
	} `json:"integration"`
}

// Normalize maps a list of exactly one post; Split maps any.
func (p Postiz) Normalize(h Headers, body []byte, ev *event.Event) error {
	return normalizeOne(p, h, body, ev)
}

// Split makes one part per post of the list: post.published (its state is PUBLISHED, or
// absent), post.failed (ERROR), or ignored (QUEUE, DRAFT). An empty list is one ignored part.
func (Postiz) Split(_ Headers, body []byte) ([]Part, error) {
	var list []jsontext.Value
	if err := unmarshalBody(body, &list); err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return []Part{{Ignored: "postiz sent an empty list: it names no post (gitroomhq/postiz-app#1861)"}}, nil
	}
	parts := make([]Part, 0, len(list))
	for i, raw := range list {
		p, err := postizPart(raw)
		if err != nil {
			return nil, unnormalizable("[%d]: %s", i, reasonOf(err))
		}
		parts = append(parts, p)
	}
	return narrowed(parts, func(k int) []byte { return append(append([]byte{'['}, list[k]...), ']') }), nil
}

func postizPart(raw jsontext.Value) (Part, error) {
	var p postizPost
	if err := unmarshal(raw, &p); err != nil {
		return Part{}, err
	}
	if p.ID == "" {
		return Part{}, unnormalizable("missing id")
	}
	typ := map[string]string{"": event.PostPublished, "PUBLISHED": event.PostPublished, "ERROR": event.PostFailed}[p.State]
	if typ == "" {
		return Part{Ignored: fmt.Sprintf("postiz post in state %s is not mapped", quote(p.State))}, nil
	}
	at, _ := time.Parse(time.RFC3339, p.PublishDate)
	ev := event.Event{
		ID: derivedID("postiz", p.ID, p.ReleaseURL), Type: typ, OccurredAt: at.UTC(), PostID: ptr(p.ID),
		ProfileName: ptr(p.Integration.Name), Platform: ptr(p.Integration.ProviderIdentifier),
	}
	if typ == event.PostPublished {
		ev.PlatformPostURL, ev.PublishedAt = ptr(p.ReleaseURL), timePtr(ev.OccurredAt)
	}
	return Part{Event: ev}, nil
}

// RetryHorizon: Postiz sends once and takes any answer as done (docs/providers.md).
func (Postiz) RetryHorizon() time.Duration { return 0 }

// Types lists what Postiz sends: published posts only.
func (Postiz) Types() []string { return []string{event.PostPublished} }

// Deliver renders ev as Postiz does, a list of one post whose id is ev.ID, POSTed to the URL
// that ends with secret.
func (p Postiz) Deliver(ev *event.Event, secret string, _ time.Time) (Delivery, error) {
	if _, err := p.Key(secret); err != nil {
		return Delivery{}, err
	}
	if ev.Type != event.PostPublished {
		return Delivery{}, fmt.Errorf("postiz: sends no %s", ev.Type)
	}
	d, err := jsonDelivery([]any{map[string]any{
		"id": ev.ID, "content": "Simulated post", "publishDate": ev.OccurredAt.UTC().Format("2006-01-02T15:04:05.000Z07:00"),
		"releaseURL": deref(ev.PlatformPostURL), "state": "PUBLISHED",
		"integration": map[string]any{"id": "integration_" + deref(ev.ProfileName), "name": deref(ev.ProfileName),
			"providerIdentifier": deref(ev.Platform), "picture": "", "type": "social"},
	}})
	if err != nil {
		return Delivery{}, err
	}
	d.Path = "/" + secret
	return d, nil
}
