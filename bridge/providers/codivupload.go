package providers

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"time"

	"github.com/socialbridge/bridge/bridge/failure"
	"github.com/socialbridge/bridge/event"
)

// CodivUpload is the preset of CodivUpload's webhooks: the raw body is signed with
// HMAC-SHA256 under the secret as is, in hex in X-CodivUpload-Signature; the body is an
// envelope {event, id, timestamp, data} whose id is the dedup key. Nothing signed carries a
// time, so there is no replay window: dedup by id covers redeliveries.
type CodivUpload struct{}

const (
	codivSignatureHeader = "X-CodivUpload-Signature"
	codivEventHeader     = "X-CodivUpload-Event"
)

// Key uses the secret's bytes as they are.
func (CodivUpload) Key(secret string) (*Key, error) {
	if secret == "" {
		return nil, errors.New("codivupload: empty secret")
	}
	return NewKey([]byte(secret)), nil
}

// Verify checks the hex HMAC-SHA256 of body in X-CodivUpload-Signature against each key.
func (CodivUpload) Verify(h Headers, body []byte, keys []*Key, _ time.Time) error {
	header := h.Peek(codivSignatureHeader)
	if len(header) == 0 {
		return failure.New(failure.Unauthorized, "missing %s header", codivSignatureHeader)
	}
	var got [sha256.Size]byte
	if len(header) != hex.EncodedLen(len(got)) || !decodeHex(got[:], header) {
		return failure.New(failure.Unauthorized, "malformed %s header: want %d hex digits", codivSignatureHeader, hex.EncodedLen(len(got)))
	}
	var want [sha256.Size]byte
	for _, k := range keys {
		k.Sum(&want, body)
		if hmac.Equal(got[:], want[:]) {
			return nil
		}
	}
	return failure.New(failure.Unauthorized, "signature does not match")
}

// RetryHorizon: the source document says CodivUpload retries "typically 3-10 retries over
// hours", without a schedule; a day covers hours with room, and is the default window.
func (CodivUpload) RetryHorizon() time.Duration { return 24 * time.Hour }

func decodeHex(dst, src []byte) bool {
	_, err := hex.Decode(dst, src)
	return err == nil
}

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
	body, err := compactJSON(struct {
		Event     string         `json:"event"`
		ID        string         `json:"id"`
		Timestamp string         `json:"timestamp"`
		Data      map[string]any `json:"data"`
	}{ev.Type, ev.ID, now.UTC().Format(time.RFC3339), canonicalData(ev)})
	if err != nil {
		return Delivery{}, err
	}
	var sum [sha256.Size]byte
	key.Sum(&sum, body)
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set(codivEventHeader, ev.Type)
	h.Set(codivSignatureHeader, hex.EncodeToString(sum[:]))
	return Delivery{Header: h, Body: body}, nil
}
