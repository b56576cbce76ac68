package providers

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/socialbridge/bridge/bridge/failure"
	"github.com/socialbridge/bridge/event"
)

// X is the preset of X's Account Activity API webhooks (docs/providers.md, "X"). The raw body
// is signed with HMAC-SHA256 under the app's consumer secret, in base64 after "sha256=" in
// x-twitter-webhooks-signature. Nothing signed carries a time, so there is no replay window,
// and there is no event id: each event gets one derived from what tells it apart. A delivery
// is {"for_user_id", "<kind>_events": [...]} and may carry several events; each is its own
// record. X checks the endpoint with a CRC GET (?crc_token=), answered with the HMAC of the
// token under the consumer secret (the last of the source's secrets): the same key and
// encoding as a delivery's signature, so the CRC answers only opaque tokens, which no JSON
// object is, and Verify accepts only JSON objects (see opaqueToken).
//
// Retry policy of the sender (enterprise tier): three more attempts over five minutes, each
// given 3 seconds to be answered; no retries documented for the other tiers.
type X struct{}

const (
	xMaxCRCToken = 1024
	xPlatform    = "x"
)

// xScheme is how X signs, deliveries and CRC answers alike: the base64 HMAC of the raw body
// after "sha256=".
var xScheme = mustScheme(HMACScheme{Header: "x-twitter-webhooks-signature", Prefix: "sha256=", Encoding: "base64"})

// Key uses the consumer secret's bytes as they are.
func (X) Key(secret string) (*Key, error) { return rawKey("x", secret) }

// Verify checks the sha256= base64 HMAC of body in x-twitter-webhooks-signature. A body
// that is not a JSON object is refused whatever its signature: X sends none, and the CRC
// signs strings that are not (an answer to the CRC is no signature of a delivery).
func (X) Verify(h Headers, body []byte, keys []*Key, now time.Time) error {
	if !jsonObject(body) {
		return failure.New(failure.Unauthorized, "not a JSON object: X signs no other body")
	}
	return xScheme.verify(h, body, keys, now)
}

// Handshake answers X's CRC: {"response_token":"sha256=<base64 HMAC(secret, crc_token)>"},
// with the last of keys, the current consumer secret. X gives it 3 seconds. Only an opaque
// token is answered: the answer is the signature a delivery of that body would carry.
func (X) Handshake(q Query, keys []*Key) (string, []byte, error) {
	token := q.Peek("crc_token")
	if !opaqueToken(token, xMaxCRCToken) || len(keys) == 0 {
		return "", nil, failure.New(failure.Unauthorized, "CRC refused: want a crc_token of 1 to %d letters, digits or -._~+/=", xMaxCRCToken)
	}
	body := fmt.Appendf(nil, `{"response_token":"%s"}`, xScheme.signature(keys[len(keys)-1], token))
	return "application/json", body, nil
}

// Normalize maps a delivery of exactly one event; Split maps any.
func (p X) Normalize(h Headers, body []byte, ev *event.Event) error {
	return normalizeOne(p, h, body, ev)
}

// Split makes one part per event of every event array, in order. Mapped: tweets by the
// subscribed user as post.published, tweets of others (replies, mentions, quotes, retweets)
// as comment.received, follows and unfollows of the user as follower.gained and
// follower.lost, and user_event.revoke (the user took back the app's access) as
// post.token_expired. Other arrays (favorites, blocks, direct messages…) are ignored.
func (X) Split(_ Headers, body []byte) ([]Part, error) {
	ms, err := objectMembers(body)
	if err != nil {
		return nil, err
	}
	forUser, err := xForUser(ms)
	if err != nil {
		return nil, err
	}
	var parts []Part
	var origin []xOrigin
	for i, m := range ms {
		elems, ok, err := xElements(m)
		if err != nil {
			return nil, err
		}
		for j, elem := range elems {
			if !ok {
				parts = append(parts, Part{Ignored: fmt.Sprintf("x %s are not mapped", m.name)})
			} else if p, err := xPart(m.name, forUser, elem); err != nil {
				return nil, unnormalizable("%s[%d]: %s", m.name, j, reasonOf(err))
			} else {
				parts = append(parts, p)
			}
			origin = append(origin, xOrigin{i, elem})
		}
	}
	if len(parts) == 0 && xHasActivity(ms) {
		return nil, unnormalizable("not an Account Activity delivery: X Activity API deliveries (data.event_uuid) are not mapped")
	}
	return narrowed(parts, func(k int) []byte { return xNarrow(ms, origin[k]) }), nil
}

// xOrigin is where a part came from: the member, and the element of its array.
type xOrigin struct {
	member int
	elem   jsontext.Value
}

// xNarrow is the delivery with only the part's own event: its context members (for_user_id
// and any other that is not an event) and its member with the one element.
func xNarrow(ms []member, o xOrigin) []byte {
	var keep []member
	for i, m := range ms {
		switch {
		case i == o.member && m.name == "user_event":
			keep = append(keep, m)
		case i == o.member:
			keep = append(keep, member{m.name, append(append(jsontext.Value{'['}, o.elem...), ']')})
		case !xEvents(m):
			keep = append(keep, m)
		}
	}
	return appendObject(nil, keep...)
}

func xForUser(ms []member) (string, error) {
	for _, m := range ms {
		if m.name == "for_user_id" {
			if m.value.Kind() != '"' {
				return "", unnormalizable("field \"for_user_id\": want a string, got %s", jsonKind(m.value.Kind()))
			}
			return scalarText(m.value), nil
		}
	}
	return "", nil
}

// xEvents reports whether m carries events: an array named *_events, or user_event.
func xEvents(m member) bool {
	return m.name == "user_event" || strings.HasSuffix(m.name, "_events")
}

// xHasActivity reports whether the body is an X Activity API delivery, {"data": {…}}.
func xHasActivity(ms []member) bool {
	for _, m := range ms {
		if m.name == "data" && m.value.Kind() == '{' {
			return true
		}
	}
	return false
}

// xElements returns the events of m, and whether they are of a mapped kind.
func xElements(m member) (elems []jsontext.Value, mapped bool, err error) {
	switch {
	case m.name == "user_event":
		var ue struct {
			Revoke jsontext.Value `json:"revoke"`
		}
		if err := unmarshal(m.value, &ue); err != nil {
			return nil, false, unnormalizable("user_event: %s", reasonOf(err))
		}
		return []jsontext.Value{m.value}, present(ue.Revoke), nil
	case !xEvents(m):
		return nil, false, nil
	}
	if err := unmarshal(m.value, &elems); err != nil {
		return nil, false, unnormalizable("%s: %s", m.name, reasonOf(err))
	}
	switch m.name {
	case "tweet_create_events", "follow_events", "unfollow_events":
		return elems, true, nil
	}
	return elems, false, nil
}

func xPart(name, forUser string, elem jsontext.Value) (Part, error) {
	if name == "user_event" {
		return xRevoke(elem)
	}
	if forUser == "" {
		return Part{}, unnormalizable("missing for_user_id")
	}
	if name == "tweet_create_events" {
		return xTweet(forUser, elem)
	}
	return xFollow(forUser, elem)
}

type xTweetEvent struct {
	IDStr     string `json:"id_str"`
	CreatedAt string `json:"created_at"`
	Text      string `json:"text"`
	InReplyTo string `json:"in_reply_to_status_id_str"`
	User      xUser  `json:"user"`
	Extended  struct {
		FullText string `json:"full_text"`
	} `json:"extended_tweet"`
}

type xUser struct {
	ID         jsontext.Value `json:"id"`
	IDStr      string         `json:"id_str"`
	ScreenName string         `json:"screen_name"`
	Name       string         `json:"name"`
}

func (u xUser) id() string {
	if u.IDStr != "" {
		return u.IDStr
	}
	return scalarText(u.ID)
}

func xTweet(forUser string, elem jsontext.Value) (Part, error) {
	var t xTweetEvent
	if err := unmarshal(elem, &t); err != nil {
		return Part{}, err
	}
	if t.IDStr == "" {
		return Part{}, unnormalizable("missing id_str")
	}
	at, _ := time.Parse(time.RubyDate, t.CreatedAt)
	ev := event.Event{ID: derivedID("x", "tweet", forUser, t.IDStr), OccurredAt: at.UTC(), Platform: ptr(xPlatform)}
	if t.User.id() == forUser {
		ev.Type, ev.PlatformPostID, ev.ProfileName, ev.PublishedAt = event.PostPublished, ptr(t.IDStr), ptr(t.User.ScreenName), timePtr(ev.OccurredAt)
		if t.User.ScreenName != "" {
			ev.PlatformPostURL = ptr("https://x.com/" + t.User.ScreenName + "/status/" + t.IDStr)
		}
		return Part{Event: ev}, nil
	}
	text := t.Text
	if t.Extended.FullText != "" {
		text = t.Extended.FullText
	}
	ev.Type, ev.CommentID, ev.PlatformPostID, ev.Text = event.CommentReceived, ptr(t.IDStr), ptr(t.InReplyTo), ptr(text)
	ev.AuthorID, ev.AuthorName = ptr(t.User.id()), ptr(t.User.ScreenName)
	return Part{Event: ev}, nil
}

type xFollowEvent struct {
	Type             string         `json:"type"`
	CreatedTimestamp jsontext.Value `json:"created_timestamp"`
	Target           xUser          `json:"target"`
	Source           xUser          `json:"source"`
}

func xFollow(forUser string, elem jsontext.Value) (Part, error) {
	var f xFollowEvent
	if err := unmarshal(elem, &f); err != nil {
		return Part{}, err
	}
	types := map[string]string{"follow": event.FollowerGained, "unfollow": event.FollowerLost}
	typ, known := types[f.Type]
	if !known || f.Target.id() != forUser {
		return Part{Ignored: fmt.Sprintf("x %s of another account is not mapped", quote(f.Type))}, nil
	}
	ms := scalarText(f.CreatedTimestamp)
	ev := event.Event{
		ID: derivedID("x", f.Type, f.Source.id(), f.Target.id(), ms), Type: typ, Platform: ptr(xPlatform),
		AccountID: ptr(f.Target.id()), ProfileName: ptr(f.Target.ScreenName),
		FollowerID: ptr(f.Source.id()), FollowerName: ptr(f.Source.ScreenName),
	}
	if n, err := strconv.ParseInt(ms, 10, 64); err == nil {
		ev.OccurredAt = time.UnixMilli(n).UTC()
	}
	return Part{Event: ev}, nil
}

func xRevoke(elem jsontext.Value) (Part, error) {
	var ue struct {
		Revoke struct {
			DateTime string `json:"date_time"`
			Target   struct {
				AppID jsontext.Value `json:"app_id"`
			} `json:"target"`
			Source struct {
				UserID jsontext.Value `json:"user_id"`
			} `json:"source"`
		} `json:"revoke"`
	}
	if err := unmarshal(elem, &ue); err != nil {
		return Part{}, err
	}
	r := ue.Revoke
	user := scalarText(r.Source.UserID)
	if user == "" {
		return Part{}, unnormalizable("revoke: missing source.user_id")
	}
	at, _ := time.Parse(time.RFC3339, r.DateTime)
	return Part{Event: event.Event{
		ID: derivedID("x", "revoke", user, scalarText(r.Target.AppID), r.DateTime), Type: event.PostTokenExpired,
		OccurredAt: at.UTC(), Platform: ptr(xPlatform), ProfileName: ptr(user),
	}}, nil
}

// SignedTime is the newest time of the delivery's events: created_timestamp or timestamp_ms
// (milliseconds), created_at (tweets), user_event.revoke.date_time.
func (X) SignedTime(body []byte) (time.Time, bool) {
	ms, err := objectMembers(body)
	if err != nil {
		return time.Time{}, false
	}
	var newest time.Time
	later := func(t time.Time) {
		if t.After(newest) {
			newest = t
		}
	}
	for _, m := range ms {
		switch {
		case m.name == "user_event":
			var ue struct {
				Revoke struct {
					DateTime string `json:"date_time"`
				} `json:"revoke"`
			}
			if unmarshal(m.value, &ue) == nil {
				t, _ := time.Parse(time.RFC3339, ue.Revoke.DateTime)
				later(t)
			}
		case xEvents(m):
			var elems []xTimes
			if unmarshal(m.value, &elems) == nil {
				for _, e := range elems {
					later(e.newest())
				}
			}
		}
	}
	return newest, !newest.IsZero()
}

// xTimes are the times an element of an event array may carry.
type xTimes struct {
	CreatedTimestamp jsontext.Value `json:"created_timestamp"`
	TimestampMS      jsontext.Value `json:"timestamp_ms"`
	CreatedAt        string         `json:"created_at"`
}

func (e xTimes) newest() time.Time {
	var newest time.Time
	for _, v := range []jsontext.Value{e.CreatedTimestamp, e.TimestampMS} {
		if n, err := strconv.ParseInt(scalarText(v), 10, 64); err == nil && time.UnixMilli(n).After(newest) {
			newest = time.UnixMilli(n)
		}
	}
	if t, err := time.Parse(time.RubyDate, e.CreatedAt); err == nil && t.After(newest) {
		newest = t
	}
	return newest.UTC()
}

// RetryHorizon: X's enterprise tier retries three more times over five minutes; other tiers
// document no retries (docs/providers.md).
func (X) RetryHorizon() time.Duration { return 5 * time.Minute }

// Types lists what the mapped events carry.
func (X) Types() []string {
	return []string{event.PostPublished, event.PostTokenExpired, event.CommentReceived, event.FollowerGained, event.FollowerLost}
}

// xSimUser is the subscribed user of the simulated deliveries.
const xSimUser = "2244994945"

// Deliver renders ev as an Account Activity delivery, signed as X signs: ev.ID becomes the
// tweet id, the follower's id or the revoking user's id, so that the derived id follows it.
func (X) Deliver(ev *event.Event, secret string, now time.Time) (Delivery, error) {
	key, err := (X{}).Key(secret)
	if err != nil {
		return Delivery{}, err
	}
	created := ev.OccurredAt.UTC().Format(time.RubyDate)
	self := map[string]any{"id_str": xSimUser, "screen_name": deref(ev.ProfileName)}
	var body map[string]any
	switch ev.Type {
	case event.PostPublished:
		body = map[string]any{"for_user_id": xSimUser, "tweet_create_events": []any{
			map[string]any{"id_str": ev.ID, "created_at": created, "text": "scheduled post", "user": self}}}
	case event.CommentReceived:
		body = map[string]any{"for_user_id": xSimUser, "tweet_create_events": []any{map[string]any{
			"id_str": ev.ID, "created_at": created, "text": deref(ev.Text), "in_reply_to_status_id_str": deref(ev.PlatformPostID),
			"user": map[string]any{"id_str": deref(ev.AuthorID), "screen_name": deref(ev.AuthorName)}}}}
	case event.FollowerGained, event.FollowerLost:
		typ := map[string]string{event.FollowerGained: "follow", event.FollowerLost: "unfollow"}[ev.Type]
		body = map[string]any{"for_user_id": xSimUser, typ + "_events": []any{map[string]any{
			"type": typ, "created_timestamp": strconv.FormatInt(ev.OccurredAt.UnixMilli(), 10), "target": self,
			"source": map[string]any{"id": ev.ID, "screen_name": deref(ev.FollowerName)}}}}
	case event.PostTokenExpired:
		body = map[string]any{"user_event": map[string]any{"revoke": map[string]any{
			"date_time": ev.OccurredAt.UTC().Format(time.RFC3339), "target": map[string]any{"app_id": "13090192"},
			"source": map[string]any{"user_id": ev.ID}}}}
	default:
		return Delivery{}, fmt.Errorf("x: sends no %s", ev.Type)
	}
	d, err := jsonDelivery(body)
	if err != nil {
		return Delivery{}, err
	}
	xScheme.sign(d.Header, key, d.Body, "")
	return d, nil
}
