package testkit_test

import (
	"strings"
	"testing"
	"time"

	"github.com/socialbridge/bridge/bridge/providers"
	"github.com/socialbridge/bridge/internal/testkit"
)

// headers adapts a header map to providers.Headers; the presets look names up
// case-insensitively, so the test looks them up as written.
type headers map[string]string

func (h headers) Peek(key string) []byte {
	for k, v := range h {
		if strings.EqualFold(k, key) {
			return []byte(v)
		}
	}
	return nil
}

// TestSignaturesVerify: the presets accept what testkit signs, and refuse it under
// another secret.
func TestSignaturesVerify(t *testing.T) {
	body := []byte(`{"id":"evt_1"}`)
	now := time.Now()
	for _, c := range []struct {
		preset, secret, other string
		h                     map[string]string
	}{
		{"codivupload", "cdv_whsec_1", "cdv_whsec_2", testkit.CodivHeaders("cdv_whsec_1", "post.published", body)},
		{"standard-webhooks", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAA",
			testkit.StandardHeaders("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_1", now, body)},
	} {
		p, _ := providers.Lookup(c.preset)
		v := p.(providers.Signed)
		good, err := p.Key(c.secret)
		if err != nil {
			t.Fatal(err)
		}
		bad, err := p.Key(c.other)
		if err != nil {
			t.Fatal(err)
		}
		if err := v.Verify(headers(c.h), body, []*providers.Key{good}, now); err != nil {
			t.Errorf("%s: %v", c.preset, err)
		}
		if err := v.Verify(headers(c.h), body, []*providers.Key{bad}, now); err == nil {
			t.Errorf("%s: verified under another secret", c.preset)
		}
	}
}
