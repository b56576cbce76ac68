package providers_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"testing"
	"time"

	"github.com/socialbridge/bridge/bridge/failure"
	"github.com/socialbridge/bridge/bridge/providers"
)

const (
	swSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	swKeyHex = "31f290f6bf06298aab4f08d43c3f082cf648a362da2da4b0"
	swSig    = "v1,+A3nx++7xgZ99veDxiWc+RQCrFgJtG6zJWmGZcs8iuQ="
)

var swNow = time.Unix(1767225600, 0)

func TestStandardWebhooksKey(t *testing.T) {
	raw, _ := hex.DecodeString(swKeyHex)
	msg := []byte("msg.1767225600.{}")
	var want, got [sha256.Size]byte
	providers.NewKey(raw).Sum(&want, msg)
	for _, secret := range []string{swSecret, swSecret[len("whsec_"):]} {
		mustKey(t, providers.StandardWebhooks{}, secret).Sum(&got, msg)
		if got != want {
			t.Errorf("Key(%s) is not the base64-decoded secret", secret)
		}
	}
	for _, secret := range []string{"", "whsec_", "whsec_%%%", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS"} {
		if _, err := (providers.StandardWebhooks{}).Key(secret); err == nil {
			t.Errorf("Key(%q) succeeded", secret)
		}
	}
}

// swSign signs id.ts.body under the base64 key b64, as a sender would.
func swSign(t *testing.T, b64, id, ts string, body []byte) string {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatal(err)
	}
	sum := reference(key, id, ".", ts, ".", string(body))
	return "v1," + base64.StdEncoding.EncodeToString(sum[:])
}

func TestStandardWebhooksVerify(t *testing.T) {
	p := providers.StandardWebhooks{}
	const oldB64 = "b2xkIGtleSwgcmV0aXJlZCBzb29u"
	right, old := mustKey(t, p, swSecret), mustKey(t, p, "whsec_"+oldB64)
	body, h := sample(t, "standard-webhooks", "sample")
	if got := string(h.Peek("webhook-signature")); got != swSig {
		t.Fatalf("sample signature = %s", got)
	}
	oldSig := swSign(t, oldB64, "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", "1767225600", body)
	fresh := swSign(t, swSecret[len("whsec_"):], "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", "1767225601", body)
	keys := []*providers.Key{right}
	const sigHeader = "webhook-signature"
	for _, tc := range []struct {
		name   string
		h      headers
		body   []byte
		keys   []*providers.Key
		now    time.Time
		reason string
	}{
		{"sample", h, body, keys, swNow, ""},
		{"5 minutes old", h, body, keys, swNow.Add(5 * time.Minute), ""},
		{"5 minutes in the future", h, body, keys, swNow.Add(-5 * time.Minute), ""},
		{"6 minutes old", h, body, keys, swNow.Add(6 * time.Minute), "webhook-timestamp too old: more than 5m0s before now"},
		{"6 minutes in the future", h, body, keys, swNow.Add(-6 * time.Minute), "webhook-timestamp too new: more than 5m0s after now"},
		{"old key's signature first", h.with(sigHeader, oldSig+" "+swSig), body, keys, swNow, ""},
		{"old key's signature last", h.with(sigHeader, swSig+" "+oldSig), body, keys, swNow, ""},
		{"only the old key's signature", h.with(sigHeader, oldSig), body, keys, swNow, "signature does not match"},
		{"rotation, second key matches", h, body, []*providers.Key{old, right}, swNow, ""},
		{"rotation, first key matches", h, body, []*providers.Key{right, old}, swNow, ""},
		{"only an old key", h, body, []*providers.Key{old}, swNow, "signature does not match"},
		{"no keys", h, body, nil, swNow, "signature does not match"},
		{"v1a entry ignored", h.with(sigHeader, "v1a,c2lnbmF0dXJl "+swSig), body, keys, swNow, ""},
		{"extra spaces", h.with(sigHeader, "  "+oldSig+"   "+swSig+" "), body, keys, swNow, ""},
		{"malformed entry ignored", h.with(sigHeader, "v1,%%% "+swSig), body, keys, swNow, ""},
		{"header names in other case", h.with("webhook-id", "-").with("Webhook-Id", "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"), body, keys, swNow, ""},
		{"tampered body", h, bytes.Replace(body, []byte("instagram"), []byte("facebook"), 1), keys, swNow, "signature does not match"},
		{"other id", h.with("webhook-id", "msg_other"), body, keys, swNow, "signature does not match"},
		{"other timestamp", h.with("webhook-timestamp", "1767225601"), body, keys, swNow, "signature does not match"},
		{"signature of a fresher timestamp", h.with(sigHeader, fresh), body, keys, swNow, "signature does not match"},
		{"missing webhook-id", h.with("webhook-id", "-"), body, keys, swNow, "missing webhook-id header"},
		{"missing webhook-timestamp", h.with("webhook-timestamp", "-"), body, keys, swNow, "missing webhook-timestamp header"},
		{"missing webhook-signature", h.with(sigHeader, "-"), body, keys, swNow, "missing webhook-signature header"},
		{"empty webhook-signature", h.with(sigHeader, ""), body, keys, swNow, "missing webhook-signature header"},
		{"timestamp not a number", h.with("webhook-timestamp", "yesterday"), body, keys, swNow, "malformed webhook-timestamp header: want unix seconds"},
		{"timestamp with fraction", h.with("webhook-timestamp", "1767225600.0"), body, keys, swNow, "malformed webhook-timestamp header: want unix seconds"},
		{"negative timestamp", h.with("webhook-timestamp", "-1767225600"), body, keys, swNow, "malformed webhook-timestamp header: want unix seconds"},
		{"timestamp in milliseconds", h.with("webhook-timestamp", "1767225600000"), body, keys, swNow, "webhook-timestamp too new: more than 5m0s after now"},
		{"timestamp overflowing int64", h.with("webhook-timestamp", "99999999999999999999"), body, keys, swNow, "malformed webhook-timestamp header: want unix seconds"},
		{"only v1a", h.with(sigHeader, "v1a,c2lnbmF0dXJl"), body, keys, swNow, "malformed webhook-signature header: want v1,<32 bytes in base64>"},
		{"no version", h.with(sigHeader, swSig[3:]), body, keys, swNow, "malformed webhook-signature header: want v1,<32 bytes in base64>"},
		{"blank signature list", h.with(sigHeader, "   "), body, keys, swNow, "malformed webhook-signature header: want v1,<32 bytes in base64>"},
		{"malformed base64", h.with(sigHeader, "v1,!A3nx++7xgZ99veDxiWc+RQCrFgJtG6zJWmGZcs8iuQ="), body, keys, swNow, "malformed webhook-signature header: want v1,<32 bytes in base64>"},
		{"unpadded base64", h.with(sigHeader, swSig[:len(swSig)-1]), body, keys, swNow, "malformed webhook-signature header: want v1,<32 bytes in base64>"},
		{"empty v1 value", h.with(sigHeader, "v1,"), body, keys, swNow, "malformed webhook-signature header: want v1,<32 bytes in base64>"},
		{"hex instead of base64", h.with(sigHeader, "v1,f80de7c7efbbc6067df6f783c6259cf91402ac580"), body, keys, swNow, "malformed webhook-signature header: want v1,<32 bytes in base64>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkFailure(t, p.Verify(tc.h, tc.body, tc.keys, tc.now), failure.Unauthorized, tc.reason)
		})
	}
}
