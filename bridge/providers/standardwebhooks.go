package providers

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/socialbridge/bridge/bridge/failure"
	"github.com/socialbridge/bridge/event"
)

// StandardWebhooks is the preset of the Standard Webhooks scheme (v1, HMAC-SHA256): the
// signed content is "{webhook-id}.{webhook-timestamp}.{body}", the timestamp must lie within
// ±5 minutes of now, and webhook-id, constant across retries, is the dedup key. The body is
// {"type", "timestamp", "data"} with the data fields under their canonical names.
type StandardWebhooks struct{}

const swTolerance = 5 * time.Minute

var dot = []byte(".")

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
	id, ts, sigs := h.Peek("webhook-id"), h.Peek("webhook-timestamp"), h.Peek("webhook-signature")
	switch {
	case len(id) == 0:
		return failure.New(failure.Unauthorized, "missing webhook-id header")
	case len(ts) == 0:
		return failure.New(failure.Unauthorized, "missing webhook-timestamp header")
	case len(sigs) == 0:
		return failure.New(failure.Unauthorized, "missing webhook-signature header")
	}
	if err := checkTimestamp(ts, now); err != nil {
		return err
	}
	var want [sha256.Size]byte
	for _, k := range keys {
		k.Sum(&want, id, dot, ts, dot, body)
		if hasV1(sigs, &want) {
			return nil
		}
	}
	return signatureFailure(sigs)
}

func checkTimestamp(ts []byte, now time.Time) error {
	sec, ok := unixSeconds(ts)
	if !ok {
		return failure.New(failure.Unauthorized, "malformed webhook-timestamp header: want unix seconds")
	}
	switch age := now.Sub(time.Unix(sec, 0)); {
	case age > swTolerance:
		return failure.New(failure.Unauthorized, "webhook-timestamp too old: more than %v before now", swTolerance)
	case age < -swTolerance:
		return failure.New(failure.Unauthorized, "webhook-timestamp too new: more than %v after now", swTolerance)
	}
	return nil
}

// unixSeconds parses decimal digits, few enough to fit an int64.
func unixSeconds(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// hasV1 reports whether the webhook-signature header holds a v1 signature equal to want.
func hasV1(header []byte, want *[sha256.Size]byte) bool {
	for entry := range bytes.FieldsSeq(header) {
		if sig, ok := decodeV1(entry); ok && hmac.Equal(sig[:], want[:]) {
			return true
		}
	}
	return false
}

// decodeV1 decodes an entry "v1,<base64>"; ok is false for other versions and bad values.
func decodeV1(entry []byte) (sig [sha256.Size]byte, ok bool) {
	version, value, _ := bytes.Cut(entry, []byte(","))
	if string(version) != "v1" || len(value) != base64.StdEncoding.EncodedLen(sha256.Size) {
		return sig, false
	}
	var buf [sha256.Size + 1]byte // DecodedLen of 44 characters
	n, err := base64.StdEncoding.Decode(buf[:], value)
	copy(sig[:], buf[:])
	return sig, err == nil && n == sha256.Size
}

// signatureFailure says why no signature in the webhook-signature header matched.
func signatureFailure(header []byte) error {
	v1, wellFormed := 0, 0
	for entry := range bytes.FieldsSeq(header) {
		if bytes.HasPrefix(entry, []byte("v1,")) {
			v1++
			if _, ok := decodeV1(entry); ok {
				wellFormed++
			}
		}
	}
	switch {
	case v1 == 0:
		return failure.New(failure.Unauthorized, "webhook-signature header has no v1 signature")
	case wellFormed == 0:
		return failure.New(failure.Unauthorized, "malformed webhook-signature header: want v1,<%d bytes in base64>", sha256.Size)
	}
	return failure.New(failure.Unauthorized, "signature does not match")
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
	body, err := compactJSON(struct {
		Type      string         `json:"type"`
		Timestamp string         `json:"timestamp"`
		Data      map[string]any `json:"data"`
	}{ev.Type, now.UTC().Format(time.RFC3339), canonicalData(ev)})
	if err != nil {
		return Delivery{}, err
	}
	ts := strconv.FormatInt(now.Unix(), 10)
	var sum [sha256.Size]byte
	key.Sum(&sum, []byte(ev.ID), dot, []byte(ts), dot, body)
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("webhook-id", ev.ID)
	h.Set("webhook-timestamp", ts)
	h.Set("webhook-signature", "v1,"+base64.StdEncoding.EncodeToString(sum[:]))
	return Delivery{Header: h, Body: body}, nil
}
