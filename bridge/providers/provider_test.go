package providers_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/socialbridge/bridge/bridge/providers"
)

func TestRegistry(t *testing.T) {
	if got := strings.Join(providers.Names(), ","); got != "ayrshare,codivupload,hmac,meta,post-bridge,postiz,standard-webhooks,upload-post,x" {
		t.Fatalf("Names() = %s", got)
	}
	for _, n := range providers.Names() {
		if _, ok := providers.Lookup(n); !ok {
			t.Errorf("Lookup(%q) failed", n)
		}
	}
	if _, ok := providers.Lookup("nope"); ok {
		t.Error("Lookup(nope) succeeded")
	}
}

// TestOneProofEach: every preset has exactly one proof of authenticity, the one the ingress
// checks: a signature (Signed), a URL token (Unsigned), or none, for a polled provider to
// which nothing is POSTed (Poller).
func TestOneProofEach(t *testing.T) {
	for _, name := range providers.Names() {
		p := mustNew(t, name)
		_, signed := p.(providers.Signed)
		_, unsigned := p.(providers.Unsigned)
		_, polled := p.(providers.Poller)
		if n := btoi(signed) + btoi(unsigned) + btoi(polled); n != 1 {
			t.Errorf("%s: Signed %v, Unsigned %v, Poller %v: want exactly one", name, signed, unsigned, polled)
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func reference(key []byte, parts ...string) [sha256.Size]byte {
	m := hmac.New(sha256.New, key)
	for _, p := range parts {
		m.Write([]byte(p))
	}
	return [sha256.Size]byte(m.Sum(nil))
}

func TestKeySum(t *testing.T) {
	// GitHub's published known-answer vector.
	k := providers.NewKey([]byte("It's a Secret to Everybody"))
	var sum [sha256.Size]byte
	for range 3 { // the same again from a pooled, reset state
		k.Sum(&sum, []byte("Hello, "), nil, []byte("World!"))
		if got := hex.EncodeToString(sum[:]); got != "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17" {
			t.Fatalf("Sum = %s", got)
		}
	}
}

func TestKeyCopiesRaw(t *testing.T) {
	raw := []byte("secret")
	k := providers.NewKey(raw)
	raw[0] = 'X'
	var sum [sha256.Size]byte
	k.Sum(&sum, []byte("body"))
	if sum != reference([]byte("secret"), "body") {
		t.Fatal("NewKey did not copy its raw key")
	}
}

func TestKeyConcurrent(t *testing.T) {
	raw := []byte("concurrent secret")
	k := providers.NewKey(raw)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				msg := fmt.Sprintf("message %d-%d", g, i)
				var sum [sha256.Size]byte
				k.Sum(&sum, []byte(msg))
				if sum != reference(raw, msg) {
					t.Errorf("Sum(%q) wrong", msg)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestKeyPrintsRedacted(t *testing.T) {
	const secret = "cdv_whsec_3b9c1f7a2e5d8b6c4a1f0e9d8c7b6a5f"
	k := mustKey(t, providers.CodivUpload{}, secret)
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
		if got := fmt.Sprintf(verb, k); got != "[redacted]" {
			t.Errorf("Sprintf(%s, key) = %q", verb, got)
		}
	}
	if k.String() != "[redacted]" || k.GoString() != "[redacted]" {
		t.Errorf("String() = %q, GoString() = %q", k.String(), k.GoString())
	}
	type config struct {
		Name string
		Keys []*providers.Key
	}
	for _, verb := range []string{"%v", "%+v", "%#v"} {
		got := fmt.Sprintf(verb, config{"codivupload", []*providers.Key{k}})
		if strings.Contains(got, secret) || strings.Contains(got, hex.EncodeToString([]byte(secret))) {
			t.Errorf("Sprintf(%s, config) leaks the secret: %s", verb, got)
		}
	}
}

// TestNoSecretInErrors checks that no error, of a bad secret or a failed verification,
// names the secret or the signature it was given.
func TestNoSecretInErrors(t *testing.T) {
	badSecrets := map[string][]string{
		"codivupload":       {""},
		"standard-webhooks": {"", "whsec_", "whsec_not*base64*secret", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw=="},
	}
	for name, secrets := range badSecrets {
		p, _ := providers.Lookup(name)
		for _, s := range secrets {
			_, err := p.Key(s)
			if err == nil {
				t.Errorf("%s: Key(%q) succeeded", name, s)
				continue
			}
			if bare := strings.TrimPrefix(s, "whsec_"); bare != "" && strings.Contains(err.Error(), bare) {
				t.Errorf("%s: Key error names the secret: %v", name, err)
			}
		}
	}

	type signed struct {
		preset, secret, signatureHeader string
		body                            []byte
		h                               headers
	}
	sampled := func(preset, name, secret, header string) signed {
		body, h := sample(t, preset, name)
		return signed{preset, secret, header, body, h}
	}
	cases := []signed{
		sampled("codivupload", "post_published", codivSecret, "X-CodivUpload-Signature"),
		sampled("standard-webhooks", "sample", swSecret, "webhook-signature"),
		sampled("ayrshare", "scheduled_success", ayrSecret, "X-Authorization-Content-SHA256"),
		sampled("meta", "page_feed_comment", metaSecret, "X-Hub-Signature-256"),
		sampled("x", "follow_events", xSecret, "x-twitter-webhooks-signature"),
	}
	for _, c := range cases {
		p := mustSigned(t, c.preset)
		right := mustKey(t, p, c.secret)
		sig := string(c.h.Peek(c.signatureHeader))
		for _, tc := range []struct {
			h    headers
			body []byte
		}{
			{c.h, append([]byte(" "), c.body...)},
			{c.h.with(c.signatureHeader, sig[:len(sig)-2]+"!!"), c.body},
			{c.h.with(c.signatureHeader, sig+sig), c.body},
			{c.h.with(c.signatureHeader, "-"), c.body},
		} {
			err := p.Verify(tc.h, tc.body, []*providers.Key{right}, swNow) // swNow is also Ayrshare's sample time
			if err == nil {
				t.Fatalf("%s: Verify succeeded", c.preset)
			}
			msg := fmt.Sprintf("%v %+v %#v", err, err, err)
			for _, secret := range []string{c.secret, strings.TrimPrefix(c.secret, "whsec_"), sig, sig[3:]} {
				if strings.Contains(msg, secret) {
					t.Errorf("%s: error %q contains %q", c.preset, msg, secret)
				}
			}
		}
	}
}
