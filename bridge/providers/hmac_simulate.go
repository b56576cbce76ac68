package providers

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/socialbridge/bridge/event"
)

// Deliver renders ev as a sender following the scheme would: each value where the scheme
// looks for it, the type under the sender's name for it when hmac.types has one, the data
// fields under their canonical names, and the signature as the scheme says.
func (p HMAC) Deliver(ev *event.Event, secret string, now time.Time) (Delivery, error) {
	c := p.c
	key, err := p.Key(secret)
	if err != nil || c == nil {
		return Delivery{}, fmt.Errorf("hmac: needs a configured scheme and a secret: %v", err)
	}
	h, root := http.Header{}, map[string]any{}
	put := func(l *location, v any) {
		if l == nil {
			return
		}
		if l.header != "" {
			h.Set(l.header, fmt.Sprint(v))
			return
		}
		setPath(root, l.path, v)
	}
	put(c.id, ev.ID)
	put(c.typ, c.senderType(ev.Type))
	put(c.time, ev.OccurredAt.UTC().Format(time.RFC3339))
	put(c.data, canonicalData(ev))
	if _, taken := root["id"]; len(p.UnsignedFields()) > 0 && !taken {
		root["id"] = ev.ID // as a real sender's, the bodies of two events differ (see ContentKeyed)
	}
	d, err := jsonDelivery(root)
	if err != nil {
		return Delivery{}, err
	}
	maps.Copy(d.Header, h)
	c.sig.sign(d.Header, key, d.Body, strconv.FormatInt(now.Unix(), 10))
	return d, nil
}

// senderType is the sender's name for a canonical type: the first, in order, that
// hmac.types maps to it, or the canonical name.
func (c *hmacConfig) senderType(canonical string) string {
	for _, from := range slices.Sorted(maps.Keys(c.types)) {
		if c.types[from] == canonical {
			return from
		}
	}
	return canonical
}

// setPath sets v at path in root, making the objects on the way.
func setPath(root map[string]any, path []string, v any) {
	for _, seg := range path[:len(path)-1] {
		next, ok := root[seg].(map[string]any)
		if !ok {
			next = map[string]any{}
			root[seg] = next
		}
		root = next
	}
	root[path[len(path)-1]] = v
}
