package providers_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/socialbridge/bridge/bridge/failure"
	"github.com/socialbridge/bridge/bridge/providers"
)

// Ayrshare's samples (testdata/ayrshare) are signed with this secret at TS 1767225600. The docs do
// not say whether the HMAC is sent in hex or base64; the samples' headers hold hex, and these
// are the base64 forms of the same HMACs.
const ayrSecret = "my-ayrshare-webhook-secret"

var ayrBase64 = map[string]string{
	"scheduled_success":          "HQeUkhOBQBpMPJYvwkRuHeBC7ywXzGCW+0+80/d89jY=",
	"scheduled_failure":          "yx9kBM7lbLCl2UAIMRW1TXuKLqumTXZztOv/08SDvtk=",
	"scheduled_tiktok_published": "zk0euMKC/P/FCm2OM6UPVfhMunMOhAI6kope/tByv2Y=",
	"social_unlink_system":       "ec2Ad9ZQb0l4L7P4LX0M2B4hJ5CRd5/HmtG2qXfBp1M=",
	"social_refresh":             "bMZ880cRrAs5UT6b0XNqhLugSOxOtbi7bTqMyamSm74=",
	"comments":                   "0YvwlhCTGwBTM6nRu6XSWUIUKqZjfYUej+B7kb6hJZg=",
}

var ayrNow = time.Unix(1767225600, 0)

func TestAyrshareVerifySamples(t *testing.T) {
	p := mustSigned(t, "ayrshare")
	right, old := mustKey(t, p, ayrSecret), mustKey(t, p, "the secret before rotation")
	for name, b64 := range ayrBase64 {
		body, h := sample(t, "ayrshare", name)
		for _, hh := range []headers{h, h.with("X-Authorization-Content-SHA256", b64)} {
			for _, keys := range [][]*providers.Key{{right}, {old, right}} {
				if err := p.Verify(hh, body, keys, ayrNow); err != nil {
					t.Errorf("%s (%s) with %d keys: %v", name, hh.Peek("X-Authorization-Content-SHA256"), len(keys), err)
				}
			}
		}
	}
}

func TestAyrshareVerify(t *testing.T) {
	p := mustSigned(t, "ayrshare")
	right := []*providers.Key{mustKey(t, p, ayrSecret)}
	body, h := sample(t, "ayrshare", "scheduled_success")
	const sigHeader, v2, tsHeader = "X-Authorization-Content-SHA256", "X-Authorization-Content-SHA256-V2", "X-Authorization-Timestamp"
	sig := string(h.Peek(sigHeader))
	rotated := hexSig("the new secret", body)
	for _, tc := range []struct {
		name   string
		h      headers
		body   []byte
		keys   []*providers.Key
		now    time.Time
		reason string
	}{
		{"sample", h, body, right, ayrNow, ""},
		{"upper-case hex", h.with(sigHeader, strings.ToUpper(sig)), body, right, ayrNow, ""},
		{"59 minutes old", h, body, right, ayrNow.Add(59 * time.Minute), ""},
		{"rotation: the V2 header signs with the new secret", h.with(sigHeader, rotated).with(v2, sig), body, right, ayrNow, ""},
		{"rotation: only the V2 header", h.with(sigHeader, "-").with(v2, sig), body, right, ayrNow, ""},
		{"wrong secret", h, body, []*providers.Key{mustKey(t, p, "not the secret")}, ayrNow, "signature does not match"},
		{"body changed by one byte", h, bytes.Replace(body, []byte(`"code":200`), []byte(`"code":201`), 1), right, ayrNow, "signature does not match"},
		{"signature made for another source", h.with(sigHeader, hexSig("another source's secret", body)), body, right, ayrNow, "signature does not match"},
		{"stale timestamp", h, body, right, ayrNow.Add(61 * time.Minute), "X-Authorization-Timestamp too old: more than 1h0m0s before now"},
		{"timestamp from the future", h, body, right, ayrNow.Add(-61 * time.Minute), "X-Authorization-Timestamp too new: more than 1h0m0s after now"},
		{"timestamp in milliseconds", h.with(tsHeader, "1767225600000"), body, right, ayrNow, "X-Authorization-Timestamp too new: more than 1h0m0s after now"},
		{"malformed timestamp", h.with(tsHeader, "yesterday"), body, right, ayrNow, "malformed X-Authorization-Timestamp header: want unix seconds"},
		{"missing timestamp", h.with(tsHeader, "-"), body, right, ayrNow, "missing X-Authorization-Timestamp header"},
		{"missing signature", h.with(sigHeader, "-"), body, right, ayrNow, "missing X-Authorization-Content-SHA256 header"},
		{"sha256= prefix", h.with(sigHeader, "sha256="+sig), body, right, ayrNow, "malformed X-Authorization-Content-SHA256 header: want <64 hex digits or 32 bytes in base64>"},
		{"truncated", h.with(sigHeader, sig[:40]), body, right, ayrNow, "malformed X-Authorization-Content-SHA256 header: want <64 hex digits or 32 bytes in base64>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkFailure(t, p.Verify(tc.h, tc.body, tc.keys, tc.now), failure.Unauthorized, tc.reason)
		})
	}
}

// TestAyrshareHookID checks that the body's hookId, the same on every retry, is the id.
func TestAyrshareHookID(t *testing.T) {
	body := []byte(`{"action":"comments","hookId":"hk_123","created":"2026-01-01T00:00:00Z","platform":"instagram","id":"c1","text":"hi"}`)
	parts, err := mustNew(t, "ayrshare").(providers.Splitter).Split(headers{}, body)
	if err != nil || len(parts) != 1 || parts[0].Event.ID != "hk_123" {
		t.Fatalf("Split = %+v, %v; want one event with id hk_123", parts, err)
	}
}
