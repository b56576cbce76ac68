package alerts

import (
	"encoding/json"
	"time"

	"github.com/socialbridge/bridge/event"
)

// Key is what alerts are counted by.
type Key struct{ Source, Profile, Platform string }

func keyOf(ev *event.Event) Key {
	return Key{Source: ev.Source, Profile: deref(ev.ProfileName), Platform: deref(ev.Platform)}
}

// Record keys: the keyed topic's is the JSON array [source, profile, platform]; the state
// topic holds two records per key, ["alert", …] and ["delivery", …], each with one writer.
func (k Key) bytes() []byte { return jsonStrings(k.Source, k.Profile, k.Platform) }
func (k Key) stateKey(kind string) []byte {
	return jsonStrings(kind, k.Source, k.Profile, k.Platform)
}

// jsonStrings is json.Marshal of ss as an array, byte for byte (a key's bytes choose its
// partition, so they must never change), without reflection when no string needs escaping.
func jsonStrings(ss ...string) []byte {
	n := 1
	for _, s := range ss {
		if !plainJSON(s) {
			return mustJSON(ss)
		}
		n += len(s) + 3
	}
	b := make([]byte, 0, n)
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, s...)
		b = append(b, '"')
	}
	return append(b, ']')
}

// plainJSON reports whether encoding/json writes s as is between quotes: printable ASCII
// but for the characters it escapes.
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7E || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// Kinds of state records.
const (
	kindAlert    = "alert"
	kindDelivery = "delivery"
	kindMark     = "mark" // ["mark", partition]: where a load read up to; no state
)

// Alert is the group's decision for one key: the token expiry that raised the current
// alert, its cool-down, and the publish that resolved it. Written in the transaction of the
// record that changed it.
type Alert struct {
	ID           string      `json:"id"`        // event id of the token expiry
	RaisedAt     time.Time   `json:"raised_at"` // when the bridge received it
	Until        time.Time   `json:"until"`     // end of the cool-down
	Source       string      `json:"source"`
	Provider     string      `json:"provider"`
	Profile      string      `json:"profile_name"`
	Platform     string      `json:"platform"`
	PostID       string      `json:"post_id,omitempty"`
	ReconnectURL string      `json:"reconnect_url,omitempty"`
	OccurredAt   time.Time   `json:"occurred_at"`
	Resolution   *Resolution `json:"resolution,omitempty"`
}

// Resolution is the post.published that ended an alert.
type Resolution struct {
	ID      string    `json:"id"`
	At      time.Time `json:"at"` // when the bridge received it
	PostID  string    `json:"post_id,omitempty"`
	PostURL string    `json:"post_url,omitempty"`
}

// Delivery is what Slack accepted for one key. Written by the key's delivery worker only:
// Sending before each POST, then the message's id once Slack accepted it.
type Delivery struct {
	Alert      string `json:"alert,omitempty"`      // id of the last alert Slack accepted
	Resolution string `json:"resolution,omitempty"` // id of the last resolution Slack accepted
	// Sending names the message being posted ("alert:ID", "resolution:ID"). Found set at a
	// start, it means a POST's outcome is unknown: the message is sent again, marked so.
	Sending string `json:"sending,omitempty"`
}

// expire is the alert after a token expiry, and whether it is a new one to send: not when
// the key's alert is inside its cool-down and unresolved, nor when the expiry is older than
// the publish that resolved it, nor for the same event again.
func expire(cur *Alert, n *notice, cooldown time.Duration) (*Alert, bool) {
	t := n.ReceivedAt
	if cur != nil {
		switch {
		case cur.ID == n.ID,
			cur.Resolution == nil && t.Before(cur.Until),
			cur.Resolution != nil && !t.After(cur.Resolution.At):
			return cur, false
		}
	}
	return &Alert{
		ID: n.ID, RaisedAt: t, Until: t.Add(cooldown), Source: n.Key.Source, Provider: n.Provider,
		Profile: n.Key.Profile, Platform: n.Key.Platform, PostID: n.PostID,
		ReconnectURL: n.ReconnectURL, OccurredAt: n.OccurredAt,
	}, true
}

// publish is the alert after a post.published, and whether it resolves it: the alert is
// open and the publish was received after the expiry that raised it. Resolving ends the
// cool-down: the next expiry alerts again.
func publish(cur *Alert, n *notice) (*Alert, bool) {
	if cur == nil || cur.Resolution != nil || !n.ReceivedAt.After(cur.RaisedAt) {
		return cur, false
	}
	next := *cur
	next.Resolution = &Resolution{ID: n.ID, At: n.ReceivedAt, PostID: n.PostID, PostURL: n.PostURL}
	return &next, true
}

// message kinds a key may owe Slack.
const (
	msgAlert      = "alert"
	msgResolution = "resolution"
)

// owed is the next message Slack has not accepted for the key, if any: the alert first,
// then its resolution.
func owed(a *Alert, d Delivery) (kind, id string) {
	switch {
	case a == nil:
		return "", ""
	case d.Alert != a.ID:
		return msgAlert, a.ID
	case a.Resolution != nil && d.Resolution != a.Resolution.ID:
		return msgResolution, a.Resolution.ID
	}
	return "", ""
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // strings and plain structs always marshal
	}
	return b
}
