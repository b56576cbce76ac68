package providers

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/socialbridge/bridge/bridge/failure"
	"github.com/socialbridge/bridge/event"
)

// HMACScheme is how a sender signs and where its event's id, type and time are: the hmac
// section of a source's configuration, for the generic hmac preset. docs/providers.md
// works it out for GitHub and Stripe.
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

// hmacTolerance is the default replay window, Stripe's and Standard Webhooks'.
const hmacTolerance = 5 * time.Minute

// HMAC is the generic preset: everything about it comes from its HMACScheme. Its secrets
// are used as they are. It is unusable unconfigured (see New).
type HMAC struct {
	s *hmacScheme
}

// hmacScheme is an HMACScheme checked and compiled.
type hmacScheme struct {
	HMACScheme
	enc                 sigEncoding
	signed              []segment
	id, typ, time, data *location
	timestampUsed       bool
}

// segment is a piece of the signed template: literal text, or a placeholder.
type segment struct {
	literal []byte
	what    string // "body", "timestamp", or a header name
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
	c, err := compileHMAC(*s.HMAC)
	if err != nil {
		return nil, err
	}
	return HMAC{s: c}, nil
}

func compileHMAC(s HMACScheme) (*hmacScheme, error) {
	c := &hmacScheme{HMACScheme: s, enc: hexSig}
	switch s.Encoding {
	case "", "hex":
	case "base64":
		c.enc = base64Sig
	default:
		return nil, refuse("hmac.encoding", "want hex or base64, got %s", quote(s.Encoding))
	}
	if c.Signed == "" {
		c.Signed = "{body}"
	}
	if c.Tolerance == 0 {
		c.Tolerance = hmacTolerance
	}
	for _, check := range []func(*hmacScheme) error{checkSigning, checkTemplate, checkLocations, checkTypes} {
		if err := check(c); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func checkSigning(c *hmacScheme) error {
	switch {
	case c.Header == "":
		return refuse("hmac.header", "missing: name the header that holds the signature")
	case c.TimestampPrefix != "" && c.TimestampHeader == "":
		return refuse("hmac.timestamp_prefix", "needs hmac.timestamp_header")
	case c.Tolerance < 0:
		return refuse("hmac.tolerance", "must not be negative")
	}
	return nil
}

func checkTemplate(c *hmacScheme) error {
	rest := c.Signed
	bodies := 0
	for rest != "" {
		open := strings.IndexByte(rest, '{')
		if open < 0 {
			c.signed = append(c.signed, segment{literal: []byte(rest)})
			break
		}
		end := strings.IndexByte(rest[open:], '}')
		if end < 0 {
			return refuse("hmac.signed", "unclosed { in %s", quote(c.Signed))
		}
		if open > 0 {
			c.signed = append(c.signed, segment{literal: []byte(rest[:open])})
		}
		what := rest[open+1 : open+end]
		switch name, isHeader := strings.CutPrefix(what, "header:"); {
		case what == "body":
			bodies++
		case what == "timestamp":
			c.timestampUsed = true
		case isHeader && name != "":
			what = name
		default:
			return refuse("hmac.signed", "unknown placeholder {%s}: want {body}, {timestamp} or {header:NAME}", what)
		}
		c.signed = append(c.signed, segment{what: what})
		rest = rest[open+end+1:]
	}
	switch {
	case bodies != 1:
		return refuse("hmac.signed", "must contain {body} once, so that the body is signed")
	case c.timestampUsed && c.TimestampHeader == "":
		return refuse("hmac.timestamp_header", "missing: hmac.signed uses {timestamp}")
	}
	return nil
}

func checkLocations(c *hmacScheme) error {
	var err error
	for _, l := range []struct {
		key, spec string
		dst       **location
		required  bool
	}{{"hmac.id", c.ID, &c.id, true}, {"hmac.type", c.Type, &c.typ, true}, {"hmac.time", c.Time, &c.time, false}, {"hmac.data", c.Data, &c.data, false}} {
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

func checkTypes(c *hmacScheme) error {
	for _, from := range slices.Sorted(maps.Keys(c.Types)) {
		if to := c.Types[from]; to != "ignore" && !event.Known(to) {
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
	s := p.s
	if s == nil {
		return failure.New(failure.Unauthorized, "the hmac preset is not configured")
	}
	value := h.Peek(s.Header)
	if len(value) == 0 {
		return failure.New(failure.Unauthorized, "missing %s header", s.Header)
	}
	var ts []byte
	if s.TimestampHeader != "" {
		if ts = firstItem(h.Peek(s.TimestampHeader), s.TimestampPrefix); len(ts) == 0 {
			return failure.New(failure.Unauthorized, "missing timestamp in the %s header", s.TimestampHeader)
		}
		if err := checkAge(s.TimestampHeader, ts, now, s.Tolerance); err != nil {
			return err
		}
	}
	parts := s.signedParts(h, body, ts)
	wellFormed := false
	for _, item := range items(value, s.Prefix) {
		var sig [32]byte
		if decodeSig(&sig, item, s.enc) {
			wellFormed = true
			if signedBy(&sig, keys, parts...) {
				return nil
			}
		}
	}
	if !wellFormed {
		return failure.New(failure.Unauthorized, "malformed %s header: want %s%s", s.Header, s.Prefix, encodingName(s.enc))
	}
	return failure.New(failure.Unauthorized, "signature does not match")
}

func (s *hmacScheme) signedParts(h Headers, body, ts []byte) [][]byte {
	parts := make([][]byte, len(s.signed))
	for i, seg := range s.signed {
		switch seg.what {
		case "":
			parts[i] = seg.literal
		case "body":
			parts[i] = body
		case "timestamp":
			parts[i] = ts
		default:
			parts[i] = h.Peek(seg.what)
		}
	}
	return parts
}

// items returns what follows each occurrence of prefix that starts the header or an item of
// it (after a ',' or a space), up to the item's end: the signatures of headers such as
// "sha256=…", "t=…,v1=…,v1=…" or "v1,… v1,…".
func items(header []byte, prefix string) [][]byte {
	if prefix == "" {
		return [][]byte{bytes.TrimSpace(header)}
	}
	var out [][]byte
	for i := 0; i < len(header); {
		if (i == 0 || header[i-1] == ',' || header[i-1] == ' ') && bytes.HasPrefix(header[i:], []byte(prefix)) {
			start := i + len(prefix)
			end := start + bytes.IndexAny(header[start:], ", ")
			if end < start {
				end = len(header)
			}
			out, i = append(out, header[start:end]), end
			continue
		}
		i++
	}
	return out
}

func firstItem(header []byte, prefix string) []byte {
	if all := items(header, prefix); len(all) > 0 {
		return all[0]
	}
	return nil
}

// Normalize maps a delivery that carries an event; Split also says why one carries none.
func (p HMAC) Normalize(h Headers, body []byte, ev *event.Event) error {
	return normalizeOne(p, h, body, ev)
}

// Split reads the id, type, time and data where the scheme says. The type is mapped by
// hmac.types; a type it maps to "ignore" is acknowledged and produces nothing; a type
// neither mapped nor canonical is refused.
func (p HMAC) Split(h Headers, body []byte) ([]Part, error) {
	s := p.s
	if s == nil {
		return nil, unnormalizable("the hmac preset is not configured")
	}
	var root jsontext.Value
	if err := unmarshalBody(body, &root); err != nil {
		return nil, err
	}
	typ, err := s.value(h, root, s.typ, "event type")
	if err != nil {
		return nil, err
	}
	canonical, err := s.canonicalType(typ)
	if err != nil {
		return nil, err
	}
	if canonical == "ignore" {
		return []Part{{Ignored: fmt.Sprintf("hmac.types maps %s to ignore", quote(typ))}}, nil
	}
	var ev event.Event
	if ev.ID, err = s.value(h, root, s.id, "event id"); err != nil {
		return nil, err
	}
	ev.Type = canonical
	if err := s.fill(h, root, &ev); err != nil {
		return nil, err
	}
	return []Part{{Event: ev}}, nil
}

func (s *hmacScheme) canonicalType(typ string) (string, error) {
	if to, ok := s.Types[typ]; ok {
		return to, nil
	}
	if event.Known(typ) {
		return typ, nil
	}
	return "", unnormalizable("unknown event type %s (map it in hmac.types)", quote(typ))
}

// value reads a string (or number) at l, which must be there.
func (s *hmacScheme) value(h Headers, root jsontext.Value, l *location, what string) (string, error) {
	if l.header != "" {
		if len(h.Peek(l.header)) == 0 {
			return "", unnormalizable("missing %s: no %s header", what, l.header)
		}
		return headerValue(h, l.header, what)
	}
	v, ok := jsonAt(root, l.path)
	if text := scalarText(v); ok && text != "" {
		return text, nil
	}
	return "", unnormalizable("missing %s: no string at %s", what, quote(strings.Join(l.path, ".")))
}

// fill sets the time and the data fields, where the scheme has them.
func (s *hmacScheme) fill(h Headers, root jsontext.Value, ev *event.Event) error {
	if s.time != nil {
		var v jsontext.Value
		if s.time.header != "" {
			v, _ = json.Marshal(string(h.Peek(s.time.header)))
		} else {
			v, _ = jsonAt(root, s.time.path)
		}
		if t, ok := unixTime(v); ok {
			ev.OccurredAt = t
		} else if present(v) && string(v) != `""` {
			return unnormalizable("event time %s: want RFC 3339 or unix seconds", describe(string(v)))
		}
	}
	if s.data == nil {
		return nil
	}
	data, ok := jsonAt(root, s.data.path)
	if !ok || !present(data) {
		return nil
	}
	env, err := readEnvelope(append(append([]byte(`{"data":`), data...), '}'), "type")
	if err != nil {
		return err
	}
	occurred := ev.OccurredAt
	err = env.fill(ev)
	ev.OccurredAt = occurred
	return err
}

// jsonAt finds the value at path in v: member names in objects, indexes in arrays.
func jsonAt(v jsontext.Value, path []string) (jsontext.Value, bool) {
	for _, seg := range path {
		switch v.Kind() {
		case '{':
			var m map[string]jsontext.Value
			if json.Unmarshal(v, &m) != nil {
				return nil, false
			}
			var ok bool
			if v, ok = m[seg]; !ok {
				return nil, false
			}
		case '[':
			var a []jsontext.Value
			i, err := strconv.Atoi(seg)
			if err != nil || json.Unmarshal(v, &a) != nil || i < 0 || i >= len(a) {
				return nil, false
			}
			v = a[i]
		default:
			return nil, false
		}
	}
	return v, true
}

// UnsignedFields names the id and type locations that are headers the signed template does not
// include: such a source is deduplicated on DedupKey (see ContentKeyed).
func (p HMAC) UnsignedFields() []string {
	if p.s == nil {
		return nil
	}
	var out []string
	for _, l := range []struct {
		what string
		at   *location
	}{{"id", p.s.id}, {"type", p.s.typ}} {
		if l.at != nil && l.at.header != "" && !p.s.signs(l.at.header) {
			out = append(out, l.what+" from header "+l.at.header)
		}
	}
	return out
}

// signs reports whether the signed template includes header name.
func (s *hmacScheme) signs(name string) bool {
	for _, seg := range s.signed {
		if seg.what != "" && seg.what != "body" && seg.what != "timestamp" && strings.EqualFold(seg.what, name) {
			return true
		}
	}
	return false
}

// DedupKey is "signed_" and 128 bits, in hex, of the SHA-256 of the signed template's parts,
// each length-prefixed (as in derivedID), with {timestamp} left empty.
func (p HMAC) DedupKey(h Headers, body []byte) string {
	if p.s == nil {
		return ""
	}
	d := sha256.New()
	var n [binary.MaxVarintLen64]byte
	for _, part := range p.s.signedParts(h, body, nil) {
		d.Write(binary.AppendUvarint(n[:0], uint64(len(part))))
		d.Write(part)
	}
	return "signed_" + hex.EncodeToString(d.Sum(nil)[:16])
}

// Types lists every canonical type: a sender may send any, by its name or through
// hmac.types.
func (HMAC) Types() []string { return event.Types }

// Deliver renders ev as a sender following the scheme would: each value where the scheme
// looks for it, the type under the sender's name for it when hmac.types has one, the data
// fields under their canonical names, and the signature as the scheme says.
func (p HMAC) Deliver(ev *event.Event, secret string, now time.Time) (Delivery, error) {
	s := p.s
	key, err := p.Key(secret)
	if err != nil || s == nil {
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
	put(s.id, ev.ID)
	put(s.typ, s.senderType(ev.Type))
	put(s.time, ev.OccurredAt.UTC().Format(time.RFC3339))
	put(s.data, canonicalData(ev))
	if _, taken := root["id"]; len(p.UnsignedFields()) > 0 && !taken {
		root["id"] = ev.ID // as a real sender's, the bodies of two events differ (see ContentKeyed)
	}
	body, err := compactJSON(root)
	if err != nil {
		return Delivery{}, err
	}
	h.Set("Content-Type", "application/json")
	s.sign(h, key, body, strconv.FormatInt(now.Unix(), 10))
	return Delivery{Header: h, Body: body}, nil
}

// senderType is the sender's name for a canonical type: the first, in order, that
// hmac.types maps to it, or the canonical name.
func (s *hmacScheme) senderType(canonical string) string {
	for _, from := range slices.Sorted(maps.Keys(s.Types)) {
		if s.Types[from] == canonical {
			return from
		}
	}
	return canonical
}

func (s *hmacScheme) sign(h http.Header, key *Key, body []byte, ts string) {
	for _, seg := range s.signed {
		if seg.what != "" && seg.what != "body" && seg.what != "timestamp" && h.Get(seg.what) == "" {
			h.Set(seg.what, "simulated")
		}
	}
	sig := s.Prefix + encodeSig(key, s.enc, s.signedParts(httpHeader(h), body, []byte(ts))...)
	switch {
	case s.TimestampHeader == s.Header:
		h.Set(s.Header, s.TimestampPrefix+ts+","+sig)
	case s.TimestampHeader != "":
		h.Set(s.TimestampHeader, s.TimestampPrefix+ts)
		h.Set(s.Header, sig)
	default:
		h.Set(s.Header, sig)
	}
}

// httpHeader adapts an http.Header to Headers.
type httpHeader http.Header

func (h httpHeader) Peek(key string) []byte { return []byte(http.Header(h).Get(key)) }

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
