package providers

import (
	"slices"
	"strings"
	"time"
)

// scheme is an HMAC-SHA256 signature scheme, compiled: where a sender puts its signatures and
// timestamp, what it signs and how it writes a signature. The one type both verifies
// deliveries (verify) and signs the simulator's (sign), so the two cannot drift. Every preset
// of a provider that signs with an HMAC is a configuration of it, written as the generic hmac
// preset's would be (HMACScheme): each of those presets' files says its own.
type scheme struct {
	headers       []string    // the signature header, then any twin that may hold one instead
	prefix        string      // what each signature starts with; "" for a header of one signature
	enc           sigEncoding // the encodings a signature may be in; a signer writes hex if allowed
	signed        []segment   // the signed bytes, in order
	signedHeaders []string    // the headers signed, which a request must have
	timestamp     string      // the header whose timestamp's age is checked; "" for none
	tsPrefix      string      // the timestamp is the item of its header after this
	tolerance     time.Duration
}

// segment is a piece of the signed bytes: literal text, the body, the timestamp, or a header.
type segment struct {
	kind    segmentKind
	literal []byte
	header  string
}

type segmentKind int

const (
	literalSegment segmentKind = iota
	bodySegment
	timestampSegment
	headerSegment
)

// maxSegments is how many parts a delivery's signed bytes have before verify allocates:
// Standard Webhooks' "{webhook-id}.{timestamp}.{body}" has five.
const maxSegments = 5

// hmacTolerance is the default replay window, Stripe's and Standard Webhooks'.
const hmacTolerance = 5 * time.Minute

// newScheme compiles the signing half of c. It fails with a *SettingError, naming the key
// under hmac, on a scheme no sender could follow.
func newScheme(c HMACScheme) (*scheme, error) {
	s := &scheme{headers: []string{c.Header}, prefix: c.Prefix, enc: hexSig,
		timestamp: c.TimestampHeader, tsPrefix: c.TimestampPrefix, tolerance: c.Tolerance}
	switch c.Encoding {
	case "", "hex":
	case "base64":
		s.enc = base64Sig
	default:
		return nil, refuse("hmac.encoding", "want hex or base64, got %s", quote(c.Encoding))
	}
	if s.tolerance == 0 {
		s.tolerance = hmacTolerance
	}
	switch {
	case c.Header == "":
		return nil, refuse("hmac.header", "missing: name the header that holds the signature")
	case c.TimestampPrefix != "" && c.TimestampHeader == "":
		return nil, refuse("hmac.timestamp_prefix", "needs hmac.timestamp_header")
	case c.Tolerance < 0:
		return nil, refuse("hmac.tolerance", "must not be negative")
	}
	return s, s.compileTemplate(c.Signed)
}

// mustScheme is newScheme for the fixed schemes of the presets, which are right by
// construction: a test builds every preset.
func mustScheme(c HMACScheme) *scheme {
	s, err := newScheme(c)
	if err != nil {
		panic(err)
	}
	return s
}

// compileTemplate reads the signed template ("{body}" when empty) into s.signed.
func (s *scheme) compileTemplate(template string) error {
	if template == "" {
		template = "{body}"
	}
	rest, bodies := template, 0
	for rest != "" {
		open := strings.IndexByte(rest, '{')
		if open < 0 {
			s.signed = append(s.signed, segment{kind: literalSegment, literal: []byte(rest)})
			break
		}
		end := strings.IndexByte(rest[open:], '}')
		if end < 0 {
			return refuse("hmac.signed", "unclosed { in %s", quote(template))
		}
		if open > 0 {
			s.signed = append(s.signed, segment{kind: literalSegment, literal: []byte(rest[:open])})
		}
		seg, err := placeholder(rest[open+1 : open+end])
		if err != nil {
			return err
		}
		switch seg.kind {
		case bodySegment:
			bodies++
		case headerSegment:
			s.signedHeaders = append(s.signedHeaders, seg.header)
		}
		s.signed, rest = append(s.signed, seg), rest[open+end+1:]
	}
	switch {
	case bodies != 1:
		return refuse("hmac.signed", "must contain {body} once, so that the body is signed")
	case s.has(timestampSegment) && s.timestamp == "":
		return refuse("hmac.timestamp_header", "missing: hmac.signed uses {timestamp}")
	}
	return nil
}

func placeholder(what string) (segment, error) {
	switch name, isHeader := strings.CutPrefix(what, "header:"); {
	case what == "body":
		return segment{kind: bodySegment}, nil
	case what == "timestamp":
		return segment{kind: timestampSegment}, nil
	case isHeader && name != "":
		return segment{kind: headerSegment, header: name}, nil
	}
	return segment{}, refuse("hmac.signed", "unknown placeholder {%s}: want {body}, {timestamp} or {header:NAME}", what)
}

func (s *scheme) has(kind segmentKind) bool {
	for _, seg := range s.signed {
		if seg.kind == kind {
			return true
		}
	}
	return false
}

// signs reports whether the signed bytes include the header name.
func (s *scheme) signs(name string) bool {
	return slices.ContainsFunc(s.signedHeaders, func(h string) bool { return strings.EqualFold(h, name) })
}

// parts appends to dst the signed bytes of a delivery, in order; ts stands for {timestamp}.
func (s *scheme) parts(dst [][]byte, h Headers, body, ts []byte) [][]byte {
	for _, seg := range s.signed {
		switch seg.kind {
		case literalSegment:
			dst = append(dst, seg.literal)
		case bodySegment:
			dst = append(dst, body)
		case timestampSegment:
			dst = append(dst, ts)
		case headerSegment:
			dst = append(dst, h.Peek(seg.header))
		}
	}
	return dst
}
