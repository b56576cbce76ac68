package providers

import (
	"time"

	"github.com/socialbridge/bridge/event"
)

// CodivUpload is the preset of CodivUpload's webhooks: the raw body is signed with
// HMAC-SHA256 under the secret as is, in hex in X-CodivUpload-Signature; the body is an
// envelope {event, id, timestamp, data} whose id is the dedup key. The body's timestamp is
// signed (see SignedTime); no header carries one, so the signature itself has no replay window.
type CodivUpload struct{}

const codivEventHeader = "X-CodivUpload-Event"

// codivScheme is how CodivUpload signs: the hex HMAC of the raw body.
var codivScheme = mustScheme(HMACScheme{Header: "X-CodivUpload-Signature", Encoding: "hex"})

// Key uses the secret's bytes as they are.
func (CodivUpload) Key(secret string) (*Key, error) { return rawKey("codivupload", secret) }

// Verify checks the hex HMAC-SHA256 of body in X-CodivUpload-Signature against each key.
func (CodivUpload) Verify(h Headers, body []byte, keys []*Key, now time.Time) error {
	return codivScheme.verify(h, body, keys, now)
}

// RetryHorizon: the source document says CodivUpload retries "typically 3-10 retries over
// hours", without a schedule; a day covers hours with room, and is the default window.
func (CodivUpload) RetryHorizon() time.Duration { return 24 * time.Hour }

// Normalize takes the id from the body's id, and the type from the body's event, or else
// from X-CodivUpload-Event. The header is not signed: when the body has an event, the header
// is not read, so a signed delivery resent with another header is still the same event (a
// duplicate), never another type's record nor a quarantined copy.
func (CodivUpload) Normalize(h Headers, body []byte, ev *event.Event) error {
	reset(ev)
	env, err := readEnvelope(body, "event")
	if err != nil {
		return err
	}
	if ev.ID, err = env.eventID(); err != nil {
		return err
	}
	if ev.Type, err = codivType(h.Peek(codivEventHeader), env); err != nil {
		return err
	}
	return env.fill(ev)
}

func codivType(header []byte, env envelope) (string, error) {
	inBody, err := env.eventType("event")
	if err != nil {
		return "", err
	}
	if inBody == "" {
		return canonicalType(string(header))
	}
	return canonicalType(inBody)
}

// SignedTime is the body's timestamp: when CodivUpload made the delivery. The members are
// read up to it only (it comes before data in CodivUpload's envelope).
func (CodivUpload) SignedTime(body []byte) (time.Time, bool) {
	obj, err := parseObject(body)
	if err != nil {
		return time.Time{}, false
	}
	defer obj.close()
	for {
		name, value, ok := obj.next()
		switch {
		case !ok:
			return time.Time{}, false
		case name == "timestamp":
			return decodeTime(value)
		}
	}
}

// Types lists what CodivUpload sends: the post events.
func (CodivUpload) Types() []string {
	return []string{event.PostPublished, event.PostFailed, event.PostTokenExpired, event.PostRetry}
}

// Deliver renders ev as CodivUpload does: {event, id, timestamp, data} with the canonical
// field names, X-CodivUpload-Event, and the hex HMAC of the body.
func (p CodivUpload) Deliver(ev *event.Event, secret string, now time.Time) (Delivery, error) {
	key, err := p.Key(secret)
	if err != nil {
		return Delivery{}, err
	}
	d, err := jsonDelivery(struct {
		Event     string         `json:"event"`
		ID        string         `json:"id"`
		Timestamp string         `json:"timestamp"`
		Data      map[string]any `json:"data"`
	}{ev.Type, ev.ID, now.UTC().Format(time.RFC3339), canonicalData(ev)})
	if err != nil {
		return Delivery{}, err
	}
	d.Header.Set(codivEventHeader, ev.Type)
	codivScheme.sign(d.Header, key, d.Body, "")
	return d, nil
}
