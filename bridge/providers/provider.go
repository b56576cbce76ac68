// Package providers holds one preset per webhook provider: how its deliveries are proven
// authentic, and how its body maps to the canonical event. Adding a provider is one file with
// its test, plus a line in the registry below.
package providers

import (
	"sort"

	"github.com/socialbridge/bridge/event"
)

// Headers gives read access to a request's headers, case-insensitively.
// fasthttp's *RequestHeader satisfies it without allocating.
type Headers interface {
	Peek(key string) []byte
}

// Preset is what every provider's preset does: take the source's secrets, and map its
// authentic deliveries. How a delivery is proven authentic depends on the provider, and is a
// capability of its own (optional.go): a signature (Signed), the token that ends the URL
// (Unsigned), or nothing at all for a provider whose results are polled (Poller).
type Preset interface {
	// Key turns a configured secret into the key its signatures are made with (or the token,
	// or the API key, as the provider's proof is).
	// It fails, at start, on a secret this provider can never accept.
	Key(secret string) (*Key, error)
	// Normalize maps an authentic delivery into ev, filling the envelope's ID, Type and
	// OccurredAt (zero when the body has no time) and the typed fields. The caller sets
	// Source, Provider, ReceivedAt and Raw, which Normalize keeps; it clears the rest first.
	// It returns a failure.Unnormalizable error for a body that cannot be mapped.
	Normalize(h Headers, body []byte, ev *event.Event) error
}

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
