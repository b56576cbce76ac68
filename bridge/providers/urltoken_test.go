package providers_test

import (
	"strings"
	"testing"

	"github.com/socialbridge/bridge/bridge/failure"
	"github.com/socialbridge/bridge/bridge/providers"
)

const (
	urlToken      = "9f2c4e7a1b3d5f608a2c4e6b8d0f1a3c"
	otherURLToken = "0e1d2c3b4a5968778695a4b3c2d1e0f9"
)

// TestURLTokens holds the presets of unsigned senders to their one proof: the URL's token,
// checked against every secret, and nothing else.
func TestURLTokens(t *testing.T) {
	for _, name := range []string{"upload-post", "postiz"} {
		t.Run(name, func(t *testing.T) {
			p := mustNew(t, name)
			u, ok := p.(providers.Unsigned)
			if !ok {
				t.Fatalf("%s is not Unsigned", name)
			}
			right, other := mustKey(t, p, urlToken), mustKey(t, p, otherURLToken)
			for _, tc := range []struct {
				name   string
				token  string
				keys   []*providers.Key
				reason string
			}{
				{"right token", urlToken, []*providers.Key{right}, ""},
				{"rotation, second token", urlToken, []*providers.Key{other, right}, ""},
				{"token of another source", otherURLToken, []*providers.Key{right}, "URL token does not match"},
				{"one character changed", urlToken[:31] + "d", []*providers.Key{right}, "URL token does not match"},
				{"prefix of the token", urlToken[:16], []*providers.Key{right}, "URL token does not match"},
				{"token and more", urlToken + "0", []*providers.Key{right}, "URL token does not match"},
				{"upper case", strings.ToUpper(urlToken), []*providers.Key{right}, "URL token does not match"},
				{"empty", "", []*providers.Key{right}, "missing URL token: " + name + " signs nothing, so it must POST to /webhooks/{source}/{token}"},
			} {
				checkFailure(t, u.VerifyToken([]byte(tc.token), tc.keys), failure.Unauthorized, tc.reason)
			}
			if _, signed := p.(providers.Signed); signed {
				t.Errorf("%s has Verify: a request's headers alone would prove it authentic", name)
			}
		})
	}
}

func TestURLTokenKeys(t *testing.T) {
	for _, name := range []string{"upload-post", "postiz"} {
		p := mustNew(t, name)
		for _, bad := range []string{"", "short-token", "a token with spaces ok", "9f2c4e7a1b3d5f60/8a2c4e6b8d0f1a3c", "9f2c4e7a1b3d5f60?8a2c4e6b8d0f1a3c", "9f2c4e7a1b3d5f60%2F8a2c4e6b8d0f1"} {
			_, err := p.Key(bad)
			if err == nil {
				t.Errorf("%s: Key(%q) succeeded", name, bad)
			} else if bad != "" && strings.Contains(err.Error(), bad) {
				t.Errorf("%s: Key error names the token: %v", name, err)
			}
		}
	}
}

// TestURLTokenAlphabetBounds pins the edges of what Key accepts: a token of exactly
// minTokenLength characters and every end of the URL alphabet's ranges, and refuses one
// character less and each neighbour just outside a range.
func TestURLTokenAlphabetBounds(t *testing.T) {
	p := mustNew(t, "postiz")
	for _, good := range []string{"azAZ09-_.~azAZ09", "zzzzzzzzzzzzzzzz", "ZZZZZZZZZZZZZZZZ", "9999999999999999", "aaaaaaaaaaaaaaaa", "AAAAAAAAAAAAAAAA", "0000000000000000"} {
		if _, err := p.Key(good); err != nil {
			t.Errorf("Key(%q): %v", good, err)
		}
	}
	for _, bad := range []string{"azAZ09-_.~azAZ0", "`", "{", "@", "[", "/", ":", "^", "\x7f"} {
		token := bad
		if len(bad) == 1 {
			token = "azAZ09-_.~azAZ09" + bad
		}
		if _, err := p.Key(token); err == nil {
			t.Errorf("Key(%q) succeeded", token)
		}
	}
}
