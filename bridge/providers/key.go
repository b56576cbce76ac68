package providers

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"sync"
)

// Key is an HMAC-SHA256 key, ready to sign: it keeps a pool of keyed states, so a request
// neither re-keys nor allocates. It is safe for concurrent use and prints as "[redacted]".
type Key struct {
	pool   sync.Pool
	digest [sha256.Size]byte // of the raw key, for Matches
}

// keyed is one pooled HMAC state with room for its sum, so Sum's output never escapes.
type keyed struct {
	mac hash.Hash
	sum [sha256.Size]byte
}

// NewKey returns a Key for raw, which it copies.
func NewKey(raw []byte) *Key {
	raw = bytes.Clone(raw)
	k := &Key{digest: sha256.Sum256(raw)}
	k.pool.New = func() any {
		s := &keyed{mac: hmac.New(sha256.New, raw)}
		s.mac.Reset() // precomputes the keyed state that later Resets restore
		return s
	}
	return k
}

// rawKey is the Key of the presets that use the secret's bytes as they are.
func rawKey(preset, secret string) (*Key, error) {
	if secret == "" {
		return nil, errors.New(preset + ": empty secret")
	}
	return NewKey([]byte(secret)), nil
}

// Sum writes to dst the HMAC-SHA256, under k, of the concatenation of parts.
func (k *Key) Sum(dst *[sha256.Size]byte, parts ...[]byte) {
	s := k.pool.Get().(*keyed)
	for _, p := range parts {
		s.mac.Write(p)
	}
	copy(dst[:], s.mac.Sum(s.sum[:0]))
	s.mac.Reset()
	k.pool.Put(s)
}

// Matches reports, in constant time, whether token is the key's raw bytes: how the presets of
// providers that sign nothing check the token of their URL. Digests are compared, so neither
// the token's content nor its length shows in the time taken.
func (k *Key) Matches(token []byte) bool {
	d := sha256.Sum256(token)
	return hmac.Equal(d[:], k.digest[:])
}

const redacted = "[redacted]"

// String keeps the key out of logs.
func (*Key) String() string { return redacted }

// GoString keeps the key out of logs printed with %#v.
func (*Key) GoString() string { return redacted }

// Format keeps the key out of logs whatever the verb (%v, %+v, %#v, %s, %x, …).
func (*Key) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redacted)) }
