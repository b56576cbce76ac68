package providers_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/socialbridge/bridge/bridge/failure"
	"github.com/socialbridge/bridge/bridge/providers"
)

// Meta's samples (testdata/meta) are signed with this app secret.
const metaSecret = "0123456789abcdef0123456789abcdef"

var metaSamples = []string{"page_feed_comment", "page_feed_post", "page_feed_like", "instagram_comments", "instagram_mentions"}

// query is a test providers.Query.
type query map[string]string

func (q query) Peek(key string) []byte {
	if v, ok := q[key]; ok {
		return []byte(v)
	}
	return nil
}

func hexSig(secret string, body []byte) string {
	sum := reference([]byte(secret), string(body))
	return hex.EncodeToString(sum[:])
}

func base64Sig(secret string, body []byte) string {
	sum := reference([]byte(secret), string(body))
	return base64.StdEncoding.EncodeToString(sum[:])
}

func TestMetaVerifySamples(t *testing.T) {
	p := mustSigned(t, "meta")
	right, old := mustKey(t, p, metaSecret), mustKey(t, p, "the app secret before rotation")
	for _, name := range metaSamples {
		body, h := sample(t, "meta", name)
		for _, keys := range [][]*providers.Key{{right}, {old, right}} {
			if err := p.Verify(h, body, keys, time.Time{}); err != nil {
				t.Errorf("%s with %d keys: %v", name, len(keys), err)
			}
		}
	}
}

func TestMetaVerify(t *testing.T) {
	p := mustSigned(t, "meta")
	right := []*providers.Key{mustKey(t, p, metaSecret)}
	body, h := sample(t, "meta", "page_feed_comment")
	const header = "X-Hub-Signature-256"
	sig := string(h.Peek(header))
	unescaped := bytes.Replace(body, []byte(`caf\u00e9`), []byte("café"), 1)
	for _, tc := range []struct {
		name   string
		h      headers
		body   []byte
		keys   []*providers.Key
		reason string
	}{
		{"sample", h, body, right, ""},
		{"upper-case hex", h.with(header, "sha256="+strings.ToUpper(sig[7:])), body, right, ""},
		{"wrong secret", h, body, []*providers.Key{mustKey(t, p, "not the app secret")}, "signature does not match"},
		{"body changed by one byte", h, bytes.Replace(body, []byte("Jane"), []byte("Jano"), 1), right, "signature does not match"},
		{"body re-encoded without Meta's escapes", h, unescaped, right, "signature does not match"},
		{"signature made for another source", h.with(header, "sha256="+hexSig("another app's secret", body)), body, right, "signature does not match"},
		{"signature of another sample", h.with(header, "sha256=e697d5e33e6f0281e21dfa0fc15c9bc22d2ae0ab60423c09b0caa2b4da5eb31b"), body, right, "signature does not match"},
		{"missing header", h.with(header, "-"), body, right, "missing X-Hub-Signature-256 header"},
		{"only the legacy sha1 header", h.with(header, "-"), body, right, "missing X-Hub-Signature-256 header"},
		{"no prefix", h.with(header, sig[7:]), body, right, "malformed X-Hub-Signature-256 header: want sha256=<64 hex digits>"},
		{"sha1 prefix", h.with(header, "sha1="+sig[7:]), body, right, "malformed X-Hub-Signature-256 header: want sha256=<64 hex digits>"},
		{"base64 instead of hex", h.with(header, "sha256="+base64Sig(metaSecret, body)), body, right, "malformed X-Hub-Signature-256 header: want sha256=<64 hex digits>"},
		{"truncated", h.with(header, sig[:len(sig)-2]), body, right, "malformed X-Hub-Signature-256 header: want sha256=<64 hex digits>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkFailure(t, p.Verify(tc.h, tc.body, tc.keys, time.Time{}), failure.Unauthorized, tc.reason)
		})
	}
}

func TestMetaHandshake(t *testing.T) {
	hs := mustNew(t, "meta").(providers.Handshaker)
	ok := query{"hub.mode": "subscribe", "hub.challenge": "1158201444", "hub.verify_token": "my-verify-token"}
	ct, body, err := hs.Handshake(ok, nil)
	if err != nil || ct != "text/plain; charset=utf-8" || string(body) != "1158201444" {
		t.Fatalf("Handshake = %q %q %v, want the challenge echoed as text", ct, body, err)
	}
	with := func(k, v string) query {
		q := query{}
		for a, b := range ok {
			q[a] = b
		}
		if v == "-" {
			delete(q, k)
		} else {
			q[k] = v
		}
		return q
	}
	for _, tc := range []struct {
		name   string
		q      query
		reason string
	}{
		{"wrong verify token", with("hub.verify_token", "my-verify-tokem"), "verification refused: hub.verify_token does not match"},
		{"verify token's prefix", with("hub.verify_token", "my-verify"), "verification refused: hub.verify_token does not match"},
		{"missing verify token", with("hub.verify_token", "-"), "verification refused: hub.verify_token does not match"},
		{"mode not subscribe", with("hub.mode", "unsubscribe"), "verification refused: hub.mode is not subscribe"},
		{"no challenge", with("hub.challenge", "-"), "verification refused: want a hub.challenge of 1 to 256 letters, digits or -._~+/="},
		{"challenge too long", with("hub.challenge", strings.Repeat("9", 257)), "verification refused: want a hub.challenge of 1 to 256 letters, digits or -._~+/="},
		{"challenge of markup", with("hub.challenge", "<script>"), "verification refused: want a hub.challenge of 1 to 256 letters, digits or -._~+/="},
		{"challenge of JSON", with("hub.challenge", `{"a":1}`), "verification refused: want a hub.challenge of 1 to 256 letters, digits or -._~+/="},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, body, err := hs.Handshake(tc.q, nil)
			checkFailure(t, err, failure.Unauthorized, tc.reason)
			if body != nil {
				t.Errorf("a refused handshake answered %q", body)
			}
		})
	}
	unconfigured, _ := providers.Lookup("meta")
	if _, _, err := unconfigured.(providers.Handshaker).Handshake(with("hub.verify_token", ""), nil); err == nil {
		t.Error("a meta preset without a verify token accepted an empty one")
	}
}
