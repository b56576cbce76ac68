package providers

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/socialbridge/bridge/bridge/failure"
	"github.com/socialbridge/bridge/event"
)

// HMACScheme is how a sender signs and where its event's id, type and time are: the hmac
// section of a source's configuration, for the generic hmac preset. docs/providers.md
// works it out for GitHub and Stripe. The presets of the providers that sign with an HMAC are
// written as such schemes too (their signing half), compiled as the generic preset's.
type HMACScheme struct {
	Header          string // the signature header; required
	Prefix          string // what each signature in it starts with ("sha256=", "v1="); may be empty
	Encoding        string // "hex" (the default) or "base64"
	Signed          string // the signed bytes: "{body}" (the default), or e.g. "{timestamp}.{body}"
	TimestampHeader string // where {timestamp} comes from; its age is checked when set
	TimestampPrefix string // the timestamp is the item of TimestampHeader after this ("t=")
	Tolerance       time.Duration
	ID              string            // "header:NAME" or "json:PATH"; required
	Type            string            // "header:NAME" or "json:PATH"; required
	Time            string            // optional, the same; RFC 3339 or unix seconds
	Data            string            // optional "json:PATH" of an object with canonical field names
	Types           map[string]string // the sender's type → a canonical type, or "ignore"
}

// HMAC is the generic preset: everything about it comes from its HMACScheme. Its secrets
// are used as they are. It is unusable unconfigured (see New).
type HMAC struct {
	c *hmacConfig
}

// hmacConfig is an HMACScheme checked and compiled: how deliveries are signed, and where
// their fields are.
type hmacConfig struct {
	sig                 *scheme
	id, typ, time, data *location
	types               map[string]string
}

// location is where a value is: a header, or a path of member names and indexes in the body.
type location struct {
	header string
	path   []string
}

func (HMAC) configure(s Settings) (Preset, error) {
	if err := onlyFor(s, "hmac"); err != nil {
		return nil, err
	}
	if s.HMAC == nil {
		return nil, refuse("hmac", "missing: the hmac preset is configured entirely by this section")
	}
	sig, err := newScheme(*s.HMAC)
	if err != nil {
		return nil, err
	}
	c := &hmacConfig{sig: sig, types: s.HMAC.Types}
	if err := c.locate(*s.HMAC); err != nil {
		return nil, err
	}
	if err := c.checkTypes(); err != nil {
		return nil, err
	}
	return HMAC{c: c}, nil
}

// locate compiles where the id, type, time and data are.
func (c *hmacConfig) locate(s HMACScheme) error {
	var err error
	for _, l := range []struct {
		key, spec string
		dst       **location
		required  bool
	}{{"hmac.id", s.ID, &c.id, true}, {"hmac.type", s.Type, &c.typ, true}, {"hmac.time", s.Time, &c.time, false}, {"hmac.data", s.Data, &c.data, false}} {
		if l.spec == "" && !l.required {
			continue
		}
		if *l.dst, err = parseLocation(l.key, l.spec); err != nil {
			return err
		}
	}
	if c.data != nil && c.data.header != "" {
		return refuse("hmac.data", "want json:PATH: the data fields are in the body")
	}
	return nil
}

func parseLocation(key, spec string) (*location, error) {
	if name, ok := strings.CutPrefix(spec, "header:"); ok && name != "" {
		return &location{header: name}, nil
	}
	if path, ok := strings.CutPrefix(spec, "json:"); ok && path != "" && !slices.Contains(strings.Split(path, "."), "") {
		return &location{path: strings.Split(path, ".")}, nil
	}
	return nil, refuse(key, "want header:NAME or json:PATH (e.g. json:data.id), got %s", quote(spec))
}

func (c *hmacConfig) checkTypes() error {
	for _, from := range slices.Sorted(maps.Keys(c.types)) {
		if to := c.types[from]; to != "ignore" && !event.Known(to) {
			return refuse("hmac.types."+from, "unknown event type %s (want one of %s, or ignore)", quote(to), strings.Join(event.Types, ", "))
		}
	}
	return nil
}

// Key uses the secret's bytes as they are.
func (HMAC) Key(secret string) (*Key, error) { return rawKey("hmac", secret) }

// Verify checks the timestamp's age, when the scheme has one, and then every signature of
// the header (several during rotation) against every key.
func (p HMAC) Verify(h Headers, body []byte, keys []*Key, now time.Time) error {
	if p.c == nil {
		return failure.New(failure.Unauthorized, "the hmac preset is not configured")
	}
	return p.c.sig.verify(h, body, keys, now)
}

// UnsignedFields names the id and type locations that are headers the signed template does not
// include: such a source is deduplicated on DedupKey (see ContentKeyed).
func (p HMAC) UnsignedFields() []string {
	if p.c == nil {
		return nil
	}
	var out []string
	for _, l := range []struct {
		what string
		at   *location
	}{{"id", p.c.id}, {"type", p.c.typ}} {
		if l.at != nil && l.at.header != "" && !p.c.sig.signs(l.at.header) {
			out = append(out, l.what+" from header "+l.at.header)
		}
	}
	return out
}

// DedupKey is "signed_" and 128 bits, in hex, of the SHA-256 of the signed template's parts,
// each length-prefixed (as in derivedID), with {timestamp} left empty.
func (p HMAC) DedupKey(h Headers, body []byte) string {
	if p.c == nil {
		return ""
	}
	d := sha256.New()
	var n [binary.MaxVarintLen64]byte
	for _, part := range p.c.sig.parts(nil, h, body, nil) {
		d.Write(binary.AppendUvarint(n[:0], uint64(len(part))))
		d.Write(part)
	}
	return "signed_" + hex.EncodeToString(d.Sum(nil)[:16])
}

// Types lists every canonical type: a sender may send any, by its name or through
// hmac.types.
func (HMAC) Types() []string { return event.Types }
