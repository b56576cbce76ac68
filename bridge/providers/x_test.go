package providers_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/socialbridge/bridge/bridge/failure"
	"github.com/socialbridge/bridge/bridge/providers"
)

// X's own example consumer secret, from its public CRC gist (docs/providers.md, "X").
const xSecret = "z3ZX4v7mAAUGykl3EcmkqbartmuW8VFOOzCloLx9Q45P0hLrFu"

var xSamples = []string{"follow_events", "tweet_reply", "favorite_events", "user_event_revoke"}

func TestXVerifySamples(t *testing.T) {
	p := mustSigned(t, "x")
	right, old := mustKey(t, p, xSecret), mustKey(t, p, "the consumer secret before rotation")
	for _, name := range xSamples {
		body, h := sample(t, "x", name)
		for _, keys := range [][]*providers.Key{{right}, {old, right}} {
			if err := p.Verify(h, body, keys, time.Time{}); err != nil {
				t.Errorf("%s with %d keys: %v", name, len(keys), err)
			}
		}
	}
}

func TestXVerify(t *testing.T) {
	p := mustSigned(t, "x")
	right := []*providers.Key{mustKey(t, p, xSecret)}
	body, h := sample(t, "x", "follow_events")
	const header = "x-twitter-webhooks-signature"
	sig := string(h.Peek(header))
	for _, tc := range []struct {
		name   string
		h      headers
		body   []byte
		keys   []*providers.Key
		reason string
	}{
		{"sample", h, body, right, ""},
		{"wrong secret", h, body, []*providers.Key{mustKey(t, p, "not the consumer secret")}, "signature does not match"},
		{"body changed by one byte", h, bytes.Replace(body, []byte("follow"), []byte("fallow"), 1), right, "signature does not match"},
		{"signature made for another source", h.with(header, "sha256="+base64Sig("another app's consumer secret", body)), body, right, "signature does not match"},
		{"signature of another sample", h.with(header, "sha256=MLIRojpLwcZs4wKB816XS647lCM81Qn+yDzB2IUk5j0="), body, right, "signature does not match"},
		{"missing header", h.with(header, "-"), body, right, "missing x-twitter-webhooks-signature header"},
		{"no prefix", h.with(header, sig[7:]), body, right, "malformed x-twitter-webhooks-signature header: want sha256=<32 bytes in base64>"},
		{"hex instead of base64", h.with(header, "sha256="+hexSig(xSecret, body)), body, right, "malformed x-twitter-webhooks-signature header: want sha256=<32 bytes in base64>"},
		{"unpadded base64", h.with(header, sig[:len(sig)-1]), body, right, "malformed x-twitter-webhooks-signature header: want sha256=<32 bytes in base64>"},
		{"object after whitespace", h.with(header, "sha256="+base64Sig(xSecret, append([]byte(" \r\n\t"), body...))), append([]byte(" \r\n\t"), body...), right, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkFailure(t, p.Verify(tc.h, tc.body, tc.keys, time.Time{}), failure.Unauthorized, tc.reason)
		})
	}
	// Signed by the right key, as the CRC signs its tokens, but no delivery of X's.
	for _, other := range []string{"9b4507b3-9040-4669-9ca3-6b94edb50553", "12345", "true", "null", `"x"`, "[]", "", "\ufeff{}"} {
		signed := h.with(header, "sha256="+base64Sig(xSecret, []byte(other)))
		checkFailure(t, p.Verify(signed, []byte(other), right, time.Time{}), failure.Unauthorized, "not a JSON object: X signs no other body")
	}
}

// TestXCRC is X's published known answer: the CRC of its example secret and token.
func TestXCRC(t *testing.T) {
	p := mustSigned(t, "x")
	hs := p.(providers.Handshaker)
	old, current := mustKey(t, p, "the consumer secret before rotation"), mustKey(t, p, xSecret)
	q := query{"crc_token": "9b4507b3-9040-4669-9ca3-6b94edb50553", "nonce": "MTUzMzE2MjE2MA"}
	ct, body, err := hs.Handshake(q, []*providers.Key{old, current})
	if err != nil || ct != "application/json" {
		t.Fatalf("Handshake: %q, %v", ct, err)
	}
	if want := `{"response_token":"sha256=Cytd4Sq+NvEcV3MMrXxWJGJx5A+y/lXzzU2Maartkx8="}`; string(body) != want {
		t.Fatalf("CRC answer %s, want %s", body, want)
	}
	if _, body, _ := hs.Handshake(q, []*providers.Key{current, old}); bytes.Contains(body, []byte("Cytd4Sq")) {
		t.Fatal("the CRC was answered with a key other than the last, the current consumer secret")
	}
	for _, bad := range []string{"", strings.Repeat("a", 1025), `{"user_event":{"revoke":{}}}`, "{}", `"a"`, "[1]", " 1", "a b", "a\x00", "é"} {
		_, _, err := hs.Handshake(query{"crc_token": bad}, []*providers.Key{current})
		checkFailure(t, err, failure.Unauthorized, "CRC refused: want a crc_token of 1 to 1024 letters, digits or -._~+/=")
	}
	if _, _, err := hs.Handshake(query{"crc_token": strings.Repeat("a", 1024)}, []*providers.Key{current}); err != nil {
		t.Errorf("a token of 1024 letters: %v", err)
	}
}
