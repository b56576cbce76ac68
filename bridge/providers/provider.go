// Package providers holds one preset per webhook provider: how its deliveries are signed and
// verified, and how its body maps to the canonical event. Adding a provider is one file with
// its test, plus a line in the registry below.
package providers

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"hash"
	"sort"
	"sync"
	"time"

	"github.com/socialbridge/bridge/event"
)

// Headers gives read access to a request's headers, case-insensitively.
// fasthttp's *RequestHeader satisfies it without allocating.
type Headers interface {
	Peek(key string) []byte
}

// Preset verifies and normalizes the deliveries of one provider.
type Preset interface {
	// Key turns a configured secret into the key its signatures are made with.
	// It fails, at start, on a secret this provider can never accept.
	Key(secret string) (*Key, error)
	// Verify checks body against the request's signature headers with any of keys
	// (several during rotation), comparing in constant time. now is for replay windows.
	// It returns a failure.Unauthorized error whose reason names no secret or signature.
	Verify(h Headers, body []byte, keys []*Key, now time.Time) error
	// Normalize maps an authentic delivery into ev, filling the envelope's ID, Type and
	// OccurredAt (zero when the body has no time) and the typed fields. The caller sets
	// Source, Provider, ReceivedAt and Raw, which Normalize keeps; it clears the rest first.
	// It returns a failure.Unnormalizable error for a body that cannot be mapped.
	Normalize(h Headers, body []byte, ev *event.Event) error
}

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

var registry = map[string]Preset{
	"ayrshare":          Ayrshare{},
	"codivupload":       CodivUpload{},
	"hmac":              HMAC{},
	"meta":              Meta{},
	"post-bridge":       PostBridge{},
	"postiz":            Postiz{},
	"standard-webhooks": StandardWebhooks{},
	"upload-post":       UploadPost{},
	"x":                 X{},
}

// Lookup returns the preset registered under name, unconfigured: the presets that take
// Settings (meta, hmac) need New to serve a source.
func Lookup(name string) (Preset, bool) {
	p, ok := registry[name]
	return p, ok
}

// Names lists the registered presets, sorted.
func Names() []string {
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
