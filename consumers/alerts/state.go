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
	kindPublish  = "publish" // the last post.published of the key
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
	// Traceparent is the trace of the token expiry's decision, with tracing on: the alert's
	// Slack post continues it.
	Traceparent string `json:"traceparent,omitempty"`
}

// Resolution is the post.published that ended an alert.
type Resolution struct {
	ID      string    `json:"id"`
	At      time.Time `json:"at"` // when the bridge received it
	PostID  string    `json:"post_id,omitempty"`
	PostURL string    `json:"post_url,omitempty"`
	// Traceparent is the trace of the publish's decision, with tracing on: the resolution's
	// Slack post continues it.
	Traceparent string `json:"traceparent,omitempty"`
}

// Published is the latest post.published of a key (by received_at), resolving or not:
// an expiry received before it is not alerted, whatever the order the two are processed
// in. Written in the transaction of the record that moved it.
type Published struct {
	ID string    `json:"id"`
	At time.Time `json:"at"` // when the bridge received it
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

// expire is the alert after a token expiry, and whether it is a new one to send: not for
// the same event again, nor when the key's alert is inside its cool-down and unresolved,
// nor when a publish received at or after the expiry was already seen (the profile posts
// again: the alert would be resolved before it is read).
func expire(cur *Alert, last Published, n *notice, cooldown time.Duration) (*Alert, bool) {
	t := n.ReceivedAt
	if !t.After(lastPublish(cur, last)) {
		return cur, false
	}
	if cur != nil && (cur.ID == n.ID || cur.Resolution == nil && t.Before(cur.Until)) {
		return cur, false
	}
	return &Alert{
		ID: n.ID, RaisedAt: t, Until: t.Add(cooldown), Source: n.Key.Source, Provider: n.Provider,
		Profile: n.Key.Profile, Platform: n.Key.Platform, PostID: n.PostID,
		ReconnectURL: n.ReconnectURL, OccurredAt: n.OccurredAt, Traceparent: n.trace,
	}, true
}

// lastPublish is when the latest publish of a key was received: the later of its publish
// record and its alert's resolution (state written before publish records existed has
// only the latter).
func lastPublish(cur *Alert, last Published) time.Time {
	if cur != nil && cur.Resolution != nil && cur.Resolution.At.After(last.At) {
		return cur.Resolution.At
	}
	return last.At
}

// publish is the alert after a post.published, and whether it resolves it: the alert is
// open and the publish was received at or after the expiry that raised it (the same
// instant counts as after, as in expire). Resolving ends the cool-down: the next expiry
// alerts again. last is the key's latest publish after this one.
func publish(cur *Alert, last Published, n *notice) (a *Alert, resolved bool, after Published) {
	if n.ReceivedAt.After(last.At) {
		last = Published{ID: n.ID, At: n.ReceivedAt}
	}
	if cur == nil || cur.Resolution != nil || n.ReceivedAt.Before(cur.RaisedAt) {
		return cur, false, last
	}
	next := *cur
	next.Resolution = &Resolution{ID: n.ID, At: n.ReceivedAt, PostID: n.PostID, PostURL: n.PostURL, Traceparent: n.trace}
	return &next, true, last
}

// forgettable reports whether a key's state can be deleted when the newest record of its
// partition was received at now: deleting it changes no decision on a record received
// after now-horizon, and loses no message. That is: its alert, if any, is resolved (an
// open alert still owes its resolution); Slack has both messages, or they were given up
// (nothing owed means no worker is posting, and no Sending mark is left); and its last
// expiry, cool-down and publish all lie before now-horizon. A record received before
// that ("late") may be decided without the key's history.
func forgettable(a *Alert, last Published, d Delivery, now time.Time, horizon time.Duration) bool {
	if a != nil && a.Resolution == nil {
		return false
	}
	if kind, _ := owed(a, d); kind != "" {
		return false
	}
	return latest(a, last).Before(now.Add(-horizon))
}

// latest is the last time a key's state speaks of.
func latest(a *Alert, last Published) time.Time {
	t := last.At
	if a == nil {
		return t
	}
	for _, u := range []time.Time{a.RaisedAt, a.Until} {
		if u.After(t) {
			t = u
		}
	}
	if a.Resolution != nil && a.Resolution.At.After(t) {
		t = a.Resolution.At
	}
	return t
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
