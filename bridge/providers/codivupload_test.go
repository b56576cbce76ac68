package providers_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/socialbridge/bridge/bridge/failure"
	"github.com/socialbridge/bridge/bridge/providers"
)

const codivSecret = "cdv_whsec_3b9c1f7a2e5d8b6c4a1f0e9d8c7b6a5f"

var codivSamples = []string{"post_published", "post_failed", "post_token_expired", "post_retry"}

func TestCodivUploadVerifySamples(t *testing.T) {
	p := providers.CodivUpload{}
	right, old := mustKey(t, p, codivSecret), mustKey(t, p, "cdv_whsec_old")
	for _, name := range codivSamples {
		body, h := sample(t, "codivupload", name)
		for _, keys := range [][]*providers.Key{{right}, {old, right}, {right, old}} {
			if err := p.Verify(h, body, keys, time.Time{}); err != nil {
				t.Errorf("%s with %d keys: %v", name, len(keys), err)
			}
		}
	}
}

func TestCodivUploadVerify(t *testing.T) {
	p := providers.CodivUpload{}
	right, old := mustKey(t, p, codivSecret), mustKey(t, p, "cdv_whsec_old")
	body, h := sample(t, "codivupload", "post_published")
	sig := string(h.Peek("X-CodivUpload-Signature"))
	const header = "X-CodivUpload-Signature"
	for _, tc := range []struct {
		name   string
		h      headers
		body   []byte
		keys   []*providers.Key
		reason string
	}{
		{"sample", h, body, []*providers.Key{right}, ""},
		{"rotation, second key matches", h, body, []*providers.Key{old, right}, ""},
		{"header name in lower case", h.with(header, "-").with("x-codivupload-signature", sig), body, []*providers.Key{right}, ""},
		{"upper-case hex", h.with(header, strings.ToUpper(sig)), body, []*providers.Key{right}, ""},
		{"only an old key", h, body, []*providers.Key{old}, "signature does not match"},
		{"no keys", h, body, nil, "signature does not match"},
		{"tampered body", h, bytes.Replace(body, []byte("instagram"), []byte("Instagram"), 1), []*providers.Key{right}, "signature does not match"},
		{"trailing newline", h, append(bytes.Clone(body), '\n'), []*providers.Key{right}, "signature does not match"},
		{"empty body", h, nil, []*providers.Key{right}, "signature does not match"},
		{"signature of another body", h.with(header, "14b8e986e08965d42aa8bb7d3e5d53da6267dc43112da7089c7552594f676e2b"), body, []*providers.Key{right}, "signature does not match"},
		{"missing header", h.with(header, "-"), body, []*providers.Key{right}, "missing X-CodivUpload-Signature header"},
		{"empty header", h.with(header, ""), body, []*providers.Key{right}, "missing X-CodivUpload-Signature header"},
		{"non-hex", h.with(header, "g"+sig[1:]), body, []*providers.Key{right}, "malformed X-CodivUpload-Signature header: want <64 hex digits>"},
		{"too short", h.with(header, sig[:62]), body, []*providers.Key{right}, "malformed X-CodivUpload-Signature header: want <64 hex digits>"},
		{"too long", h.with(header, sig+"00"), body, []*providers.Key{right}, "malformed X-CodivUpload-Signature header: want <64 hex digits>"},
		{"sha256= prefix", h.with(header, "sha256="+sig), body, []*providers.Key{right}, "malformed X-CodivUpload-Signature header: want <64 hex digits>"},
		{"base64 instead of hex", h.with(header, "2B2AOqxCtqe6sY3vJXd4flNNpQ11HmhzbTTb+cYkr7E="), body, []*providers.Key{right}, "malformed X-CodivUpload-Signature header: want <64 hex digits>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkFailure(t, p.Verify(tc.h, tc.body, tc.keys, time.Time{}), failure.Unauthorized, tc.reason)
		})
	}
}

func TestCodivUploadKey(t *testing.T) {
	if _, err := (providers.CodivUpload{}).Key(""); err == nil {
		t.Fatal("Key(\"\") succeeded")
	}
}
