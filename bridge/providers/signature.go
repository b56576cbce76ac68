package providers

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"time"

	"github.com/socialbridge/bridge/bridge/failure"
)

// verify checks a request as the scheme's senders sign it: the signature header is there,
// and every header the signature covers; the timestamp, when the scheme has one, is within
// its tolerance of now; and one of the request's signatures (several during rotation) is the
// HMAC of the signed bytes under one of keys, compared in constant time. It fails with a
// failure.Unauthorized error that names no secret or signature.
func (s *scheme) verify(h Headers, body []byte, keys []*Key, now time.Time) error {
	var sigBuf [2][]byte // the signature header's value and its twin's: each read once
	sigs := sigBuf[:0]
	for _, name := range s.headers {
		sigs = append(sigs, h.Peek(name))
	}
	if err := s.checkHeaders(h, sigs); err != nil {
		return err
	}
	ts, err := s.checkTimestamp(h, now)
	if err != nil {
		return err
	}
	var partBuf [maxSegments][]byte
	if s.signedBy(sigs, keys, s.parts(partBuf[:0], h, body, ts)) {
		return nil
	}
	if _, wellFormed := s.find(sigs, nil); !wellFormed {
		return failure.New(failure.Unauthorized, "malformed %s header: want %s%s", s.headers[0], s.prefix, encodingName(s.enc))
	}
	return failure.New(failure.Unauthorized, "signature does not match")
}

// signedBy reports whether one of the signatures in sigs is the HMAC of parts under one of
// keys. Each key's HMAC is computed once, however many signatures there are.
func (s *scheme) signedBy(sigs [][]byte, keys []*Key, parts [][]byte) bool {
	var want [sha256.Size]byte
	for _, k := range keys {
		k.Sum(&want, parts...)
		if found, _ := s.find(sigs, &want); found {
			return true
		}
	}
	return false
}

// checkHeaders checks that the request has a signature header (sigs are their values), and
// every header signed.
func (s *scheme) checkHeaders(h Headers, sigs [][]byte) error {
	sent := false
	for _, v := range sigs {
		sent = sent || len(v) > 0
	}
	if !sent {
		return failure.New(failure.Unauthorized, "missing %s header", s.headers[0])
	}
	for _, name := range s.signedHeaders {
		if len(h.Peek(name)) == 0 {
			return failure.New(failure.Unauthorized, "missing %s header", name)
		}
	}
	return nil
}

// checkTimestamp returns the request's timestamp once its age is checked; nil when the scheme
// has none.
func (s *scheme) checkTimestamp(h Headers, now time.Time) ([]byte, error) {
	if s.timestamp == "" {
		return nil, nil
	}
	header := h.Peek(s.timestamp)
	if len(header) == 0 {
		return nil, failure.New(failure.Unauthorized, "missing %s header", s.timestamp)
	}
	ts, _, ok := nextItem(header, s.tsPrefix, 0)
	if !ok || len(ts) == 0 {
		return nil, failure.New(failure.Unauthorized, "missing timestamp in the %s header", s.timestamp)
	}
	return ts, checkAge(s.timestamp, ts, now, s.tolerance)
}

// find looks through the signature headers' values for want, comparing in constant time,
// and reports whether any of their signatures is well formed. With want nil it only tells
// the latter.
func (s *scheme) find(sigs [][]byte, want *[sha256.Size]byte) (found, wellFormed bool) {
	var sig [sha256.Size]byte
	for _, header := range sigs {
		if s.whole(header, &sig) { // the common case, read without looking for items
			if want == nil || hmac.Equal(sig[:], want[:]) {
				return want != nil, true
			}
			wellFormed = true
			continue
		}
		for item, next, ok := nextItem(header, s.prefix, 0); ok; item, next, ok = nextItem(header, s.prefix, next) {
			if !decodeSig(&sig, item, s.enc) {
				continue
			}
			if want == nil || hmac.Equal(sig[:], want[:]) {
				return want != nil, true
			}
			wellFormed = true
		}
	}
	return false, wellFormed
}

// whole decodes into sig a header that is the prefix and one signature, and nothing else:
// the one item nextItem would find in it.
func (s *scheme) whole(header []byte, sig *[sha256.Size]byte) bool {
	n := len(s.prefix)
	return len(header) > n && string(header[:n]) == s.prefix && decodeSig(sig, header[n:], s.enc)
}

// nextItem returns the first item of header at or after from: what follows prefix where
// prefix starts the header or one of its items (after a ',' or white space), up to the item's
// end. It reads the signatures of headers such as "sha256=…", "t=…,v1=…,v1=…" or "v1,… v1,…".
// next is where the item ends; ok is false when no item is left. With no prefix, the whole
// header, trimmed, is its one item.
func nextItem(header []byte, prefix string, from int) (item []byte, next int, ok bool) {
	if prefix == "" {
		if from > 0 || len(header) == 0 {
			return nil, len(header), false
		}
		return bytes.TrimSpace(header), len(header), true
	}
	for i := from; len(header)-i >= len(prefix); i++ {
		if (i == 0 || isItemEnd(header[i-1])) && string(header[i:i+len(prefix)]) == prefix {
			start := i + len(prefix)
			end := start
			for end < len(header) && !isItemEnd(header[end]) {
				end++
			}
			return header[start:end], end, true
		}
	}
	return nil, len(header), false
}

func isItemEnd(c byte) bool { return c == ',' || c == ' ' || c == '\t' }

// sign sets in h what a sender of the scheme sends with body made at ts (unix seconds): the
// timestamp, when the scheme has one, and the signature under key. A signed header that h
// lacks is set first, to "simulated".
func (s *scheme) sign(h http.Header, key *Key, body []byte, ts string) {
	for _, name := range s.signedHeaders {
		if h.Get(name) == "" {
			h.Set(name, "simulated")
		}
	}
	sig := s.signature(key, s.parts(nil, httpHeader(h), body, []byte(ts))...)
	switch {
	case s.timestamp == s.headers[0]:
		h.Set(s.headers[0], s.tsPrefix+ts+","+sig)
	case s.timestamp != "":
		h.Set(s.timestamp, s.tsPrefix+ts)
		h.Set(s.headers[0], sig)
	default:
		h.Set(s.headers[0], sig)
	}
}

// signature is the scheme's signature of the concatenation of parts under key, after its
// prefix, in hex when the scheme allows it: what a signature header holds.
func (s *scheme) signature(key *Key, parts ...[]byte) string {
	var sum [sha256.Size]byte
	key.Sum(&sum, parts...)
	if s.enc&hexSig != 0 {
		return s.prefix + hex.EncodeToString(sum[:])
	}
	return s.prefix + base64.StdEncoding.EncodeToString(sum[:])
}

// sigEncoding says how a signature header writes the HMAC's bytes.
type sigEncoding int

const (
	hexSig    sigEncoding = 1 << iota // 64 hex digits, either case
	base64Sig                         // 44 characters of standard, padded base64
)

// decodeSig decodes s, in one of the encodings enc allows, into sig.
func decodeSig(sig *[sha256.Size]byte, s []byte, enc sigEncoding) bool {
	switch {
	case enc&hexSig != 0 && len(s) == hex.EncodedLen(sha256.Size):
		_, err := hex.Decode(sig[:], s)
		return err == nil
	case enc&base64Sig != 0 && len(s) == base64.StdEncoding.EncodedLen(sha256.Size):
		var buf [sha256.Size + 1]byte // DecodedLen of 44 characters
		n, err := base64.StdEncoding.Decode(buf[:], s)
		copy(sig[:], buf[:])
		return err == nil && n == sha256.Size
	}
	return false
}

// encodingName describes what a signature in enc looks like, for error messages.
func encodingName(enc sigEncoding) string {
	switch enc {
	case hexSig:
		return "<64 hex digits>"
	case base64Sig:
		return "<32 bytes in base64>"
	}
	return "<64 hex digits or 32 bytes in base64>"
}

// checkAge checks ts, the unix seconds of header name, against now: a request older or
// newer than tolerance is refused as a possible replay.
func checkAge(name string, ts []byte, now time.Time, tolerance time.Duration) error {
	sec, ok := unixSeconds(ts)
	if !ok {
		return failure.New(failure.Unauthorized, "malformed %s header: want unix seconds", name)
	}
	switch age := now.Sub(time.Unix(sec, 0)); {
	case age > tolerance:
		return failure.New(failure.Unauthorized, "%s too old: more than %v before now", name, tolerance)
	case age < -tolerance:
		return failure.New(failure.Unauthorized, "%s too new: more than %v after now", name, tolerance)
	}
	return nil
}

// unixSeconds parses decimal digits, few enough to fit an int64.
func unixSeconds(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}
