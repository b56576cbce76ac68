package providers

import (
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/socialbridge/bridge/event"
)

// StandardWebhooks is the preset of the Standard Webhooks scheme (v1, HMAC-SHA256): the
// signed content is "{webhook-id}.{webhook-timestamp}.{body}", the timestamp must lie within
// ±5 minutes of now, and webhook-id, constant across retries, is the dedup key. The body is
// {"type", "timestamp", "data"} with the data fields under their canonical names.
type StandardWebhooks struct{}

// swScheme is how a Standard Webhooks sender signs: base64 after "v1," in webhook-signature,
// space-separated when there are several (other versions, such as v1a's ed25519, are not
// read), over "{webhook-id}.{webhook-timestamp}.{body}", within five minutes of now.
var swScheme = mustScheme(HMACScheme{
	Header: "webhook-signature", Prefix: "v1,", Encoding: "base64", Signed: "{header:webhook-id}.{timestamp}.{body}",
	TimestampHeader: "webhook-timestamp", Tolerance: 5 * time.Minute,
})

// Key decodes the secret from base64, after an optional "whsec_" prefix.
func (StandardWebhooks) Key(secret string) (*Key, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return nil, errors.New("standard-webhooks: secret is not base64 after its whsec_ prefix")
	}
	if len(raw) == 0 {
		return nil, errors.New("standard-webhooks: empty secret")
	}
	return NewKey(raw), nil
}

// RetryHorizon: the schedule the Standard Webhooks specification recommends (immediately,
// 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h) ends 75 h 35 min after the first
// attempt, plus jitter.
func (StandardWebhooks) RetryHorizon() time.Duration { return 76 * time.Hour }

// Verify accepts any v1 signature in webhook-signature that matches under any key, and
// ignores the other versions (v1a is ed25519).
func (StandardWebhooks) Verify(h Headers, body []byte, keys []*Key, now time.Time) error {
	return swScheme.verify(h, body, keys, now)
}

// Normalize takes the id from webhook-id and the type from the body's type.
func (StandardWebhooks) Normalize(h Headers, body []byte, ev *event.Event) error {
	reset(ev)
	env, err := readEnvelope(body, "type")
	if err != nil {
		return err
	}
	if ev.ID, err = headerID(h, "webhook-id"); err != nil {
		return err
	}
	t, err := env.eventType("type")
	if err != nil {
		return err
	}
	if ev.Type, err = canonicalType(t); err != nil {
		return err
	}
	return env.fill(ev)
}

// Types lists every canonical type: a Standard Webhooks sender can send any of them.
func (StandardWebhooks) Types() []string { return event.Types }

// Deliver renders ev as a Standard Webhooks sender does: {type, timestamp, data}, the event
// id in webhook-id, and a v1 signature over "{id}.{timestamp}.{body}".
func (p StandardWebhooks) Deliver(ev *event.Event, secret string, now time.Time) (Delivery, error) {
	key, err := p.Key(secret)
	if err != nil {
		return Delivery{}, err
	}
	d, err := jsonDelivery(struct {
		Type      string         `json:"type"`
		Timestamp string         `json:"timestamp"`
		Data      map[string]any `json:"data"`
	}{ev.Type, now.UTC().Format(time.RFC3339), canonicalData(ev)})
	if err != nil {
		return Delivery{}, err
	}
	d.Header.Set("webhook-id", ev.ID)
	swScheme.sign(d.Header, key, d.Body, strconv.FormatInt(now.Unix(), 10))
	return d, nil
}
