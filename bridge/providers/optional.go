package providers

import (
	"context"
	"net/http"
	"time"

	"github.com/socialbridge/bridge/event"
)

// The interfaces below are the capabilities a preset has beyond Key and Normalize, one each:
// the ingress, bridge/poll and the configuration ask a preset for them with a type assertion,
// and a preset implements only those its provider needs. Every preset has exactly one proof
// of authenticity: Signed, Unsigned, or, for a provider that sends nothing, Poller.

// Signed is a preset whose provider signs its deliveries: the ingress checks each request
// with Verify before anything else reads it.
type Signed interface {
	Preset
	// Verify checks body against the request's signature headers with any of keys
	// (several during rotation), comparing in constant time. now is for replay windows.
	// It returns a failure.Unauthorized error whose reason names no secret or signature.
	Verify(h Headers, body []byte, keys []*Key, now time.Time) error
}

// Part is one element of a delivery that can carry several events or none.
type Part struct {
	// Event is the element normalized as Normalize fills an event: ID, Type, OccurredAt and
	// the typed fields. Its Raw is the delivery narrowed to this element (the provider's
	// envelope around this one element, every value as received) when the delivery carries
	// several elements, and nil when it carries only this one: the caller then sets the body.
	Event event.Event
	// Ignored, when set, says why the element becomes no event: the provider documents it,
	// but no canonical type matches it (a direct message, a like of a post). Event is empty.
	Ignored string
}

// Splitter is a preset whose one delivery carries any number of events: Meta's
// entry[].changes[], X's event arrays, Postiz's list, Ayrshare's per-platform results, or
// events that map to nothing. The ingress calls Split instead of Normalize. A Splitter's
// Normalize accepts only a delivery of exactly one event, and fails on any other.
type Splitter interface {
	Preset
	// Split maps an authentic delivery into its parts, in the delivery's order. A part's
	// event id comes from the element alone, never from its position, so an element keeps
	// its id in any delivery that carries it. Split fails with a failure.Unnormalizable
	// error, for the whole delivery, when any element cannot be read.
	Split(h Headers, body []byte) ([]Part, error)
}

// Query gives read access to a request's query parameters; fasthttp's *Args satisfies it.
type Query interface {
	Peek(key string) []byte
}

// Handshaker is a preset whose provider checks the endpoint with a GET before it sends
// (Meta's hub.challenge, X's CRC): the ingress answers GET /webhooks/{source} with
// Handshake. The GET of a source whose preset is not a Handshaker is answered 405.
type Handshaker interface {
	Preset
	// Handshake answers the GET whose query is q, with the source's keys. It returns the
	// answer's content type and body, or a failure.Unauthorized error, naming no secret,
	// for a GET that is not the provider's (wrong verify token, no challenge).
	Handshake(q Query, keys []*Key) (contentType string, body []byte, err error)
}

// ContentKeyed is a preset that may read a delivery's event id or type from a header its
// signature does not cover (the generic preset set up for GitHub, whose X-GitHub-Delivery and
// X-GitHub-Event are not signed). Then neither can be trusted: whoever holds one signed
// delivery could resend it under fresh ids, each a new event, or under another type. The
// ingress deduplicates such a source's deliveries on DedupKey, a digest of what is signed,
// instead of on the event id, and whatever becomes of them (accepted, ignored, quarantined):
// a resent delivery is a duplicate whatever its unsigned headers say.
type ContentKeyed interface {
	Preset
	// UnsignedFields describes the event's fields that come from outside the signature, e.g.
	// "id from header X-GitHub-Delivery"; none means the id and type are signed, and the
	// source's deliveries are deduplicated by event id as any other's.
	UnsignedFields() []string
	// DedupKey is the key of an authentic delivery: a digest of what its signature covers,
	// but for a timestamp (which a sender's retry renews). Deliveries that differ only in
	// what is not signed get the same key.
	DedupKey(h Headers, body []byte) string
}

// Dated is a preset whose deliveries carry, in what their signature covers, when they were
// made (CodivUpload's timestamp, Meta's entry[].time, X's event times). Without a check, a
// captured delivery resent after its source's dedup window would be produced again: the
// ingress refuses a delivery whose signed time is older than its source's max age, or
// further than ClockSkew ahead of the bridge's clock.
type Dated interface {
	Preset
	// SignedTime returns the newest time the delivery's body carries, and false when it
	// carries none that can be read (Normalize then decides what becomes of it).
	SignedTime(body []byte) (time.Time, bool)
}

// ClockSkew is how far the clocks of a sender and the bridge may disagree: how far ahead a
// Dated delivery's signed time may be, and what a source's default max age leaves of its
// dedup window, so that a replay is either within the window (a duplicate) or refused.
const ClockSkew = 5 * time.Minute

// Unsigned is a preset whose provider signs nothing. Its deliveries are authenticated by a
// token at the end of their URL, POST /webhooks/{source}/{token}, which must be one of the
// source's secrets: a weaker proof than a signature (the token travels with every request
// and shows in any log of the URL), but the only one such a sender allows.
type Unsigned interface {
	Preset
	// VerifyToken checks, in constant time, that token is the secret of one of keys; an
	// empty token (a request to /webhooks/{source}) is refused as missing. It returns a
	// failure.Unauthorized error that never contains the token.
	VerifyToken(token []byte, keys []*Key) error
}

// Item is one result of a polled provider's listing.
type Item struct {
	ID  string // the result's own id: the event id, and the poll's cursor
	Raw []byte // the result as the API sent it, which Normalize maps
}

// Poller is a preset whose provider sends no webhooks: bridge/poll asks its API for new
// results on an interval, with the source's API key, and hands each to Normalize. It is
// neither Signed nor Unsigned: the ingress refuses every POST to its sources. As a
// Simulator, its deliveries are such results.
type Poller interface {
	Preset
	// PageRequest returns the request for the page of results at offset (0 is the newest)
	// from the API at base, authenticated with apiKey.
	PageRequest(ctx context.Context, base, apiKey string, offset int) (*http.Request, error)
	// Page reads a page the API answered: its items, newest first, and whether more pages
	// follow. It fails with a failure.Unnormalizable error on a page it cannot read.
	Page(body []byte) (items []Item, more bool, err error)
}

// RetryHorizoner is a preset whose sender's retry policy is known (docs/providers.md gives
// each provider's): RetryHorizon is how long after its first attempt the sender may still
// redeliver an event. The dedup window of such a source must cover it, or a late retry is
// produced twice. A preset without the method has no known horizon.
type RetryHorizoner interface {
	Preset
	RetryHorizon() time.Duration
}

// Horizon returns p's retry horizon, and false when it has none.
func Horizon(p Preset) (time.Duration, bool) {
	if h, ok := p.(RetryHorizoner); ok {
		return h.RetryHorizon(), true
	}
	return 0, false
}
