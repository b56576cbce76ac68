package providers

import (
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/socialbridge/bridge/event"
)

// Ayrshare is the preset of Ayrshare's webhooks (docs/providers.md, "Ayrshare"). The raw body
// is signed with HMAC-SHA256 under the secret given at registration, in
// X-Authorization-Content-SHA256 (or its -V2 twin while a secret is rotated); the docs do not
// say whether in hex or base64, so both are accepted. X-Authorization-Timestamp must lie
// within an hour of now: it is not signed, so it only stops a naive replay, and an hour
// leaves room for Ayrshare's retries. The body's hookId, the same on every retry, is the
// event id when present; otherwise one is derived from the body. A scheduled post's result
// carries one entry per platform: each is its own event.
//
// Retry policy of the sender: a non-2xx answer (or none within 10 s) is retried twice, 5 s
// and 30 s later, with the same hookId; newer docs describe up to 9 sends over about an hour
// for 408, 425, 429, 5xx and timeouts, and no retry of other 4xx answers.
type Ayrshare struct{}

// ayrScheme is how Ayrshare signs: the HMAC of the raw body, in hex or base64, in
// X-Authorization-Content-SHA256 or its -V2 twin, which carries it under the new secret while
// one is rotated; the unsigned X-Authorization-Timestamp must lie within an hour of now.
var ayrScheme = func() *scheme {
	s := mustScheme(HMACScheme{Header: "X-Authorization-Content-SHA256", TimestampHeader: "X-Authorization-Timestamp", Tolerance: time.Hour})
	s.headers, s.enc = append(s.headers, "X-Authorization-Content-SHA256-V2"), hexSig|base64Sig
	return s
}()

// Key uses the registration secret's bytes as they are.
func (Ayrshare) Key(secret string) (*Key, error) { return rawKey("ayrshare", secret) }

// Verify checks the timestamp's freshness, then the HMAC of body, hex or base64, in either
// signature header against each key.
func (Ayrshare) Verify(h Headers, body []byte, keys []*Key, now time.Time) error {
	return ayrScheme.verify(h, body, keys, now)
}

type ayrDelivery struct {
	Action    string           `json:"action"`
	SubAction string           `json:"subAction"`
	HookID    jsontext.Value   `json:"hookId"`
	Created   string           `json:"created"`
	Code      jsontext.Value   `json:"code"`
	RefID     string           `json:"refId"`
	Status    string           `json:"status"`
	ID        jsontext.Value   `json:"id"`
	Errors    []jsontext.Value `json:"errors"`
	PostIDs   []jsontext.Value `json:"postIds"`
	Type      string           `json:"type"`
	Source    string           `json:"source"`
	Platform  string           `json:"platform"`
	RefreshBy string           `json:"refreshBy"`
	PostID    jsontext.Value   `json:"postId"`
	Text      string           `json:"text"`
	From      struct {
		ID       jsontext.Value `json:"id"`
		Username string         `json:"username"`
	} `json:"from"`
	Media struct {
		ID jsontext.Value `json:"id"`
	} `json:"media"`
}

// ayrResult is one entry of a scheduled post's postIds (a success) or errors (a failure).
type ayrResult struct {
	Platform string         `json:"platform"`
	Status   string         `json:"status"`
	ID       jsontext.Value `json:"id"`
	PostURL  string         `json:"postUrl"`
	Code     jsontext.Value `json:"code"`
	Message  string         `json:"message"`
}

// Normalize maps a delivery of exactly one event; Split maps any.
func (p Ayrshare) Normalize(h Headers, body []byte, ev *event.Event) error {
	return normalizeOne(p, h, body, ev)
}

// Split maps the actions: scheduled (a scheduled post processed) as one post.published per
// entry of postIds and one post.failed per entry of errors; social unlink by the system and
// refresh (re-authorization needed) as post.token_expired; comments as comment.received.
// Other documented actions are ignored; an unknown one is refused.
func (Ayrshare) Split(_ Headers, body []byte) ([]Part, error) {
	var d ayrDelivery
	if err := unmarshalBody(body, &d); err != nil {
		return nil, err
	}
	base := scalarText(d.HookID)
	switch d.Action {
	case "scheduled":
		if base == "" {
			base = derivedID("ayrshare", d.Action, d.SubAction, scalarText(d.ID), d.Created, d.RefID)
		}
		return ayrScheduled(&d, base, body)
	case "social":
		if base == "" {
			base = derivedID("ayrshare", d.Action, d.Type, d.Source, d.Platform, d.RefID, d.RefreshBy)
		}
		return []Part{ayrSocial(&d, base)}, nil
	case "comments":
		if base == "" {
			base = derivedID("ayrshare", d.Action, d.Platform, scalarText(d.ID))
		}
		return []Part{{Event: ayrComment(&d, base)}}, nil
	case "feed", "batch", "messages", "mentions", "automations", "accountActivity", "suspended":
		return []Part{{Ignored: fmt.Sprintf("ayrshare action %s is not mapped", quote(d.Action))}}, nil
	case "":
		return nil, unnormalizable("missing action")
	}
	return nil, unnormalizable("unknown ayrshare action %s", quote(d.Action))
}

func ayrScheduled(d *ayrDelivery, base string, body []byte) ([]Part, error) {
	var parts []Part
	for i, raw := range slices.Concat(d.PostIDs, d.Errors) {
		var r ayrResult
		if err := unmarshal(raw, &r); err != nil {
			return nil, unnormalizable("%s: %s", ayrEntry(d, i), reasonOf(err))
		}
		failed := i >= len(d.PostIDs)
		if !failed && r.Status != "" && r.Status != "success" {
			parts = append(parts, Part{Ignored: fmt.Sprintf("ayrshare %s result of %s is not mapped", quote(r.Status), quote(r.Platform))})
			continue
		}
		parts = append(parts, Part{Event: ayrResultEvent(d, &r, base+"/"+r.Platform, failed)})
	}
	if len(parts) == 0 && d.Status == "error" {
		r := ayrResult{Code: d.Code}
		parts = append(parts, Part{Event: ayrResultEvent(d, &r, base, true)})
	}
	if len(parts) == 0 {
		return []Part{{Ignored: "ayrshare scheduled result lists no platform"}}, nil
	}
	return narrowed(parts, func(k int) []byte { return ayrNarrow(body, d, k) }), nil
}

func ayrEntry(d *ayrDelivery, i int) string {
	if i < len(d.PostIDs) {
		return fmt.Sprintf("postIds[%d]", i)
	}
	return fmt.Sprintf("errors[%d]", i-len(d.PostIDs))
}

func ayrResultEvent(d *ayrDelivery, r *ayrResult, id string, failed bool) event.Event {
	at, _ := time.Parse(time.RFC3339, d.Created)
	ev := event.Event{
		ID: id, Type: event.PostPublished, OccurredAt: at.UTC(),
		PostID: ptr(scalarText(d.ID)), ProfileName: ptr(d.RefID), Platform: ptr(r.Platform),
	}
	if failed {
		ev.Type, ev.ErrorCode, ev.ErrorMessage = event.PostFailed, ptr(scalarText(r.Code)), ptr(r.Message)
		return ev
	}
	ev.PlatformPostID, ev.PlatformPostURL, ev.PublishedAt = ptr(scalarText(r.ID)), ptr(r.PostURL), timePtr(ev.OccurredAt)
	return ev
}

// ayrNarrow is the body with only the k-th result: postIds and errors narrowed to it.
func ayrNarrow(body []byte, d *ayrDelivery, k int) []byte {
	ms, _ := objectMembers(body) // body was decoded already
	for i, m := range ms {
		switch m.name {
		case "postIds":
			ms[i].value = ayrOnly(d.PostIDs, k)
		case "errors":
			ms[i].value = ayrOnly(d.Errors, k-len(d.PostIDs))
		}
	}
	return appendObject(nil, ms...)
}

func ayrOnly(list []jsontext.Value, k int) jsontext.Value {
	if k < 0 || k >= len(list) {
		return jsontext.Value("[]")
	}
	return append(append(jsontext.Value{'['}, list[k]...), ']')
}

func ayrSocial(d *ayrDelivery, id string) Part {
	if !(d.Type == "unlink" && d.Source == "system") && d.Type != "refresh" {
		return Part{Ignored: fmt.Sprintf("ayrshare social %s by %s is not mapped", quote(d.Type), quote(d.Source))}
	}
	at, _ := time.Parse(time.RFC3339, d.Created)
	return Part{Event: event.Event{
		ID: id, Type: event.PostTokenExpired, OccurredAt: at.UTC(), ProfileName: ptr(d.RefID), Platform: ptr(d.Platform),
	}}
}

func ayrComment(d *ayrDelivery, id string) event.Event {
	at, _ := time.Parse(time.RFC3339, d.Created)
	return event.Event{
		ID: id, Type: event.CommentReceived, OccurredAt: at.UTC(), ProfileName: ptr(d.RefID), Platform: ptr(d.Platform),
		PostID: ptr(scalarText(d.PostID)), PlatformPostID: ptr(scalarText(d.Media.ID)),
		CommentID: ptr(scalarText(d.ID)), Text: ptr(d.Text), AuthorID: ptr(scalarText(d.From.ID)), AuthorName: ptr(d.From.Username),
	}
}

// RetryHorizon: Ayrshare documents two more attempts 5 s and 30 s later; newer reports give
// up to 9 sends over about an hour (docs/providers.md). The hour is the longer reading.
func (Ayrshare) RetryHorizon() time.Duration { return time.Hour }

// Types lists what the mapped actions carry.
func (Ayrshare) Types() []string {
	return []string{event.PostPublished, event.PostFailed, event.PostTokenExpired, event.CommentReceived}
}

// Deliver renders ev as Ayrshare does, with ev.ID as the hookId, signed in hex with the
// timestamp of now.
func (p Ayrshare) Deliver(ev *event.Event, secret string, now time.Time) (Delivery, error) {
	key, err := p.Key(secret)
	if err != nil {
		return Delivery{}, err
	}
	created := ev.OccurredAt.UTC().Format(time.RFC3339)
	body := map[string]any{"hookId": ev.ID, "refId": deref(ev.ProfileName), "platform": deref(ev.Platform)}
	switch ev.Type {
	case event.PostPublished, event.PostFailed:
		delete(body, "platform")
		body["action"], body["created"], body["id"], body["url"] = "scheduled", created, deref(ev.PostID), "https://example.com/webhooks/ayrshare"
		body["status"], body["errors"], body["postIds"] = "success", []any{}, []any{map[string]any{
			"platform": deref(ev.Platform), "status": "success", "id": deref(ev.PlatformPostID), "postUrl": deref(ev.PlatformPostURL)}}
		if ev.Type == event.PostFailed {
			body["status"], body["postIds"], body["errors"] = "error", []any{}, []any{map[string]any{
				"action": "post", "status": "error", "code": deref(ev.ErrorCode), "message": deref(ev.ErrorMessage), "platform": deref(ev.Platform)}}
		}
	case event.PostTokenExpired:
		body["action"], body["type"], body["source"] = "social", "unlink", "system"
		body["details"] = map[string]any{"message": "Account locked"}
	case event.CommentReceived:
		body["action"], body["created"], body["id"], body["postId"], body["text"] = "comments", created, deref(ev.CommentID), deref(ev.PostID), deref(ev.Text)
		body["from"] = map[string]any{"id": deref(ev.AuthorID), "username": deref(ev.AuthorName)}
	default:
		return Delivery{}, fmt.Errorf("ayrshare: sends no %s", ev.Type)
	}
	d, err := jsonDelivery(body)
	if err != nil {
		return Delivery{}, err
	}
	ayrScheme.sign(d.Header, key, d.Body, strconv.FormatInt(now.Unix(), 10))
	return d, nil
}
