package providers

import (
	"fmt"

	"github.com/socialbridge/bridge/bridge/failure"
)

// urlToken is the authentication of the presets whose providers sign nothing (see
// Unsigned): their secrets are tokens that end the webhook URL.
type urlToken struct {
	preset string
}

// minTokenLength makes a token unguessable: 16 random characters of the URL alphabet are
// about 96 bits.
const minTokenLength = 16

// Key accepts a token long enough to be unguessable, made of the characters a URL path
// carries as they are.
func (u urlToken) Key(secret string) (*Key, error) {
	if len(secret) < minTokenLength {
		return nil, fmt.Errorf("%s: a URL token needs at least %d characters (e.g. openssl rand -hex 16)", u.preset, minTokenLength)
	}
	for i := 0; i < len(secret); i++ {
		if !urlSafe(secret[i]) {
			return nil, fmt.Errorf("%s: a URL token may hold only letters, digits, '-', '_', '.' and '~'", u.preset)
		}
	}
	return NewKey([]byte(secret)), nil
}

func urlSafe(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~'
}

// VerifyToken checks token against every key, each in constant time. Without a token, the
// request was sent where a signed delivery goes: the answer says where this one goes.
func (u urlToken) VerifyToken(token []byte, keys []*Key) error {
	if len(token) == 0 {
		return failure.New(failure.Unauthorized, "missing URL token: %s signs nothing, so it must POST to /webhooks/{source}/{token}", u.preset)
	}
	for _, k := range keys {
		if k.Matches(token) {
			return nil
		}
	}
	return failure.New(failure.Unauthorized, "URL token does not match")
}
