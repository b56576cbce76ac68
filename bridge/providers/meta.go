package providers

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/socialbridge/bridge/bridge/failure"
	"github.com/socialbridge/bridge/event"
)

// Meta is the preset of Meta's Graph API webhooks, for Facebook Pages and Instagram
// (docs/providers.md, "Meta"). The raw body is signed with HMAC-SHA256 under the app secret,
// in lowercase hex after "sha256=" in X-Hub-Signature-256. Nothing signed carries a time, so
// there is no replay window, and no event id: each change gets one derived from what tells
// it apart. A delivery batches changes (entry[].changes[]); each is its own event. Before it
// sends, Meta checks the endpoint with a GET that must present the source's verify_token.
//
// Retry policy of the sender: at once, then less and less often over 36 hours; dedup ids
// should be remembered that long.
type Meta struct {
	verifyToken string
}

// metaMaxChallenge bounds the hub.challenge echoed back: Meta's is an integer.
const metaMaxChallenge = 256

// metaScheme is how Meta signs: the hex HMAC of the raw body after "sha256=".
var metaScheme = mustScheme(HMACScheme{Header: "X-Hub-Signature-256", Prefix: "sha256=", Encoding: "hex"})

func (Meta) configure(s Settings) (Preset, error) {
	if err := onlyFor(s, "meta"); err != nil {
		return nil, err
	}
	if s.VerifyToken == "" {
		return nil, refuse("verify_token", "missing: Meta's GET verification echoes hub.challenge only to a request that presents it")
	}
	return Meta{verifyToken: s.VerifyToken}, nil
}

// Key uses the app secret's bytes as they are.
func (Meta) Key(secret string) (*Key, error) { return rawKey("meta", secret) }

// Verify checks the sha256= hex HMAC of body in X-Hub-Signature-256 against each key. The
// legacy SHA-1 X-Hub-Signature is not accepted.
func (Meta) Verify(h Headers, body []byte, keys []*Key, now time.Time) error {
	return metaScheme.verify(h, body, keys, now)
}

// Handshake answers Meta's verification GET: hub.mode=subscribe with the configured
// hub.verify_token gets hub.challenge back as plain text; anything else is refused. The
// challenge (an integer, in Meta's documentation) must be an opaque token: the answer then
// never holds markup, JSON, or anything but what any client could have written itself.
func (m Meta) Handshake(q Query, _ []*Key) (string, []byte, error) {
	challenge := q.Peek("hub.challenge")
	switch {
	case string(q.Peek("hub.mode")) != "subscribe":
		return "", nil, failure.New(failure.Unauthorized, "verification refused: hub.mode is not subscribe")
	case !opaqueToken(challenge, metaMaxChallenge):
		return "", nil, failure.New(failure.Unauthorized, "verification refused: want a hub.challenge of 1 to %d letters, digits or -._~+/=", metaMaxChallenge)
	case !m.tokenMatches(q.Peek("hub.verify_token")):
		return "", nil, failure.New(failure.Unauthorized, "verification refused: hub.verify_token does not match")
	}
	return "text/plain; charset=utf-8", bytes.Clone(challenge), nil
}

// tokenMatches compares digests, so the time taken tells nothing of the token or its length.
func (m Meta) tokenMatches(token []byte) bool {
	if m.verifyToken == "" {
		return false
	}
	got, want := sha256.Sum256(token), sha256.Sum256([]byte(m.verifyToken))
	return hmac.Equal(got[:], want[:])
}

type metaDelivery struct {
	Object string         `json:"object"`
	Entry  []metaEntry    `json:"entry"`
	Rest   jsontext.Value `json:",embed"`
}

type metaEntry struct {
	ID      jsontext.Value   `json:"id"`
	Time    jsontext.Value   `json:"time"`
	Changes []jsontext.Value `json:"changes"`
	Rest    jsontext.Value   `json:",embed"`
}

type metaChange struct {
	Field string         `json:"field"`
	Value jsontext.Value `json:"value"`
}

// metaValue holds the members of a change's value that the mapped fields use.
type metaValue struct {
	Item        string         `json:"item"`
	Verb        string         `json:"verb"`
	PostID      jsontext.Value `json:"post_id"`
	CommentID   jsontext.Value `json:"comment_id"`
	ID          jsontext.Value `json:"id"`
	MediaID     jsontext.Value `json:"media_id"`
	UserID      jsontext.Value `json:"user_id"`
	Message     string         `json:"message"`
	Text        string         `json:"text"`
	CreatedTime jsontext.Value `json:"created_time"`
	From        struct {
		ID       jsontext.Value `json:"id"`
		Name     string         `json:"name"`
		Username string         `json:"username"`
	} `json:"from"`
	Media struct {
		ID jsontext.Value `json:"id"`
	} `json:"media"`
	Post struct {
		PermalinkURL string `json:"permalink_url"`
	} `json:"post"`
}

// Normalize maps a delivery of exactly one change; Split maps any.
func (m Meta) Normalize(h Headers, body []byte, ev *event.Event) error {
	return normalizeOne(m, h, body, ev)
}

// Split makes one part per change of every entry. Mapped: Page feed comments (added) and
// Instagram comments, live comments and mentions as comment.received; Page posts (status,
// post, photo, video, added) as post.published; Page likes without a post (a follow) as
// follower.gained, or follower.lost when removed. Other changes are ignored.
func (m Meta) Split(_ Headers, body []byte) ([]Part, error) {
	var d metaDelivery
	if err := unmarshalBody(body, &d); err != nil {
		return nil, err
	}
	if d.Object == "" || d.Entry == nil {
		return nil, unnormalizable("not a Meta delivery: want an object and an entry list")
	}
	var parts []Part
	var where [][2]int // the entry and change of each part
	for i := range d.Entry {
		for j, raw := range d.Entry[i].Changes {
			p, err := metaPart(d.Object, &d.Entry[i], raw)
			if err != nil {
				return nil, unnormalizable("entry[%d].changes[%d]: %s", i, j, reasonOf(err))
			}
			parts, where = append(parts, p), append(where, [2]int{i, j})
		}
	}
	return narrowed(parts, func(k int) []byte {
		e := d.Entry[where[k][0]]
		e.Changes = e.Changes[where[k][1] : where[k][1]+1]
		return marshalRaw(metaDelivery{Object: d.Object, Entry: []metaEntry{e}, Rest: d.Rest})
	}), nil
}

func metaPart(object string, e *metaEntry, raw jsontext.Value) (Part, error) {
	var c metaChange
	if err := unmarshal(raw, &c); err != nil {
		return Part{}, err
	}
	if !metaMapped(c.Field) {
		return Part{Ignored: fmt.Sprintf("meta field %s is not mapped", quote(c.Field))}, nil
	}
	var v metaValue
	if err := unmarshal(c.Value, &v); err != nil {
		return Part{}, err
	}
	var ev event.Event
	platform := metaPlatform(object)
	ev.Platform = &platform
	if !metaFill(&ev, e, c.Field, &v) {
		return Part{Ignored: fmt.Sprintf("meta %s item %s verb %s is not mapped", c.Field, quote(v.Item), quote(v.Verb))}, nil
	}
	ev.ID = derivedID("meta", object, scalarText(e.ID), c.Field, v.Item, v.Verb,
		firstText(v.CommentID, v.PostID, v.ID, v.MediaID), firstText(v.From.ID, v.UserID), string(v.CreatedTime))
	ev.OccurredAt, _ = unixTime(v.CreatedTime)
	if ev.OccurredAt.IsZero() {
		ev.OccurredAt, _ = unixTime(e.Time)
	}
	return Part{Event: ev}, nil
}

func metaMapped(field string) bool {
	switch field {
	case "feed", "comments", "live_comments", "mentions":
		return true
	}
	return false
}

// metaFill sets ev's type and fields from a change of a mapped field; false means the
// change is of a kind no canonical type matches.
func metaFill(ev *event.Event, e *metaEntry, field string, v *metaValue) bool {
	switch {
	case field == "comments" || field == "live_comments":
		ev.Type, ev.CommentID, ev.PlatformPostID, ev.Text = event.CommentReceived, ptr(scalarText(v.ID)), ptr(scalarText(v.Media.ID)), ptr(v.Text)
		ev.AuthorID, ev.AuthorName = ptr(scalarText(v.From.ID)), ptr(v.From.Username)
	case field == "mentions":
		ev.Type, ev.CommentID, ev.PlatformPostID = event.CommentReceived, ptr(scalarText(v.CommentID)), ptr(scalarText(v.MediaID))
	case v.Item == "comment" && v.Verb == "add":
		ev.Type, ev.CommentID, ev.PlatformPostID, ev.Text = event.CommentReceived, ptr(scalarText(v.CommentID)), ptr(scalarText(v.PostID)), ptr(v.Message)
		ev.AuthorID, ev.AuthorName = ptr(scalarText(v.From.ID)), ptr(v.From.Name)
	case metaPost(v.Item) && v.Verb == "add":
		published, _ := unixTime(v.CreatedTime)
		ev.Type, ev.PlatformPostID, ev.PublishedAt = event.PostPublished, ptr(scalarText(v.PostID)), timePtr(published)
		ev.PlatformPostURL = ptr(v.Post.PermalinkURL)
	case v.Item == "like" && !present(v.PostID) && (v.Verb == "add" || v.Verb == "remove"):
		ev.Type = event.FollowerGained
		if v.Verb == "remove" {
			ev.Type = event.FollowerLost
		}
		ev.AccountID, ev.FollowerID, ev.FollowerName = ptr(scalarText(e.ID)), ptr(firstText(v.UserID, v.From.ID)), ptr(v.From.Name)
	default:
		return false
	}
	return true
}

func metaPost(item string) bool {
	switch item {
	case "status", "post", "photo", "video":
		return true
	}
	return false
}

func metaPlatform(object string) string {
	if object == "page" {
		return "facebook"
	}
	return object
}

// firstText is the text of the first of vs that is a string or a number.
func firstText(vs ...jsontext.Value) string {
	for _, v := range vs {
		if s := scalarText(v); s != "" {
			return s
		}
	}
	return ""
}

// SignedTime is the newest entry[].time: when Meta sent the entries (a retry renews it).
func (Meta) SignedTime(body []byte) (time.Time, bool) {
	var d struct {
		Entry []struct {
			Time jsontext.Value `json:"time"`
		} `json:"entry"`
	}
	if unmarshal(body, &d) != nil {
		return time.Time{}, false
	}
	var newest time.Time
	for _, e := range d.Entry {
		if t, ok := unixTime(e.Time); ok && t.After(newest) {
			newest = t
		}
	}
	return newest, !newest.IsZero()
}

// RetryHorizon: Meta retries a failed delivery at once, then less and less often over 36
// hours (docs/providers.md).
func (Meta) RetryHorizon() time.Duration { return 36 * time.Hour }

// Types lists what Meta's mapped fields carry.
func (Meta) Types() []string {
	return []string{event.PostPublished, event.CommentReceived, event.FollowerGained, event.FollowerLost}
}

// metaSimPage is the Page the simulated deliveries come from.
const metaSimPage = "104923907983682"

// Deliver renders ev as a Page feed change, signed as Meta signs: ev.ID becomes the id of
// the post, comment or liking user, so that the derived event id follows it.
func (Meta) Deliver(ev *event.Event, secret string, now time.Time) (Delivery, error) {
	key, err := (Meta{}).Key(secret)
	if err != nil {
		return Delivery{}, err
	}
	value := map[string]any{"created_time": ev.OccurredAt.Unix()}
	switch ev.Type {
	case event.PostPublished:
		value = map[string]any{"item": "status", "verb": "add", "post_id": metaSimPage + "_" + ev.ID, "published": 1, "created_time": ev.OccurredAt.Unix()}
	case event.CommentReceived:
		value["item"], value["verb"], value["comment_id"] = "comment", "add", ev.ID
		value["post_id"], value["message"] = metaSimPage+"_"+deref(ev.PlatformPostID), deref(ev.Text)
		value["from"] = map[string]any{"id": deref(ev.AuthorID), "name": deref(ev.AuthorName)}
	case event.FollowerGained, event.FollowerLost:
		verb := map[string]string{event.FollowerGained: "add", event.FollowerLost: "remove"}[ev.Type]
		value = map[string]any{"item": "like", "verb": verb, "user_id": ev.ID, "from": map[string]any{"id": ev.ID, "name": deref(ev.FollowerName)}}
	default:
		return Delivery{}, fmt.Errorf("meta: sends no %s", ev.Type)
	}
	d, err := jsonDelivery(map[string]any{"object": "page", "entry": []any{map[string]any{
		"id": metaSimPage, "time": now.Unix(), "changes": []any{map[string]any{"field": "feed", "value": value}},
	}}})
	if err != nil {
		return Delivery{}, err
	}
	metaScheme.sign(d.Header, key, d.Body, "")
	return d, nil
}

// deref is *s, or "" for nil.
func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
