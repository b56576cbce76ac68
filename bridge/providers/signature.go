package providers

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"time"

	"github.com/socialbridge/bridge/bridge/failure"
	"github.com/socialbridge/bridge/event"
)

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
		return decodeHex(sig[:], s)
	case enc&base64Sig != 0 && len(s) == base64.StdEncoding.EncodedLen(sha256.Size):
		var buf [sha256.Size + 1]byte // DecodedLen of 44 characters
		n, err := base64.StdEncoding.Decode(buf[:], s)
		copy(sig[:], buf[:])
		return err == nil && n == sha256.Size
	}
	return false
}

// signedBy reports whether sig is the HMAC of the concatenation of parts under any of keys,
// comparing in constant time.
func signedBy(sig *[sha256.Size]byte, keys []*Key, parts ...[]byte) bool {
	var want [sha256.Size]byte
	for _, k := range keys {
		k.Sum(&want, parts...)
		if hmac.Equal(sig[:], want[:]) {
			return true
		}
	}
	return false
}

// encodeSig writes the HMAC of parts under key as enc says: what a simulated sender signs.
func encodeSig(key *Key, enc sigEncoding, parts ...[]byte) string {
	var sum [sha256.Size]byte
	key.Sum(&sum, parts...)
	if enc == base64Sig {
		return base64.StdEncoding.EncodeToString(sum[:])
	}
	return hex.EncodeToString(sum[:])
}

// checkAge checks ts, the unix seconds of header name, against now: a request older or
// newer than tolerance is refused as a possible replay.
func checkAge(name string, ts []byte, now time.Time, tolerance time.Duration) error {
	sec, ok := unixSeconds(ts)
	if !ok {
		return failure.New(failure.Unauthorized, "malformed %s: want unix seconds", name)
	}
	switch age := now.Sub(time.Unix(sec, 0)); {
	case age > tolerance:
		return failure.New(failure.Unauthorized, "%s too old: more than %v before now", name, tolerance)
	case age < -tolerance:
		return failure.New(failure.Unauthorized, "%s too new: more than %v after now", name, tolerance)
	}
	return nil
}

// derivedID makes the event id of a provider that sends none: a hash of the fields that
// tell its events apart, so that every redelivery of an event gets the same id and no two
// events share one. Each field is length-prefixed, so no two lists of fields hash alike.
func derivedID(provider string, fields ...string) string {
	h := sha256.New()
	var n [binary.MaxVarintLen64]byte
	for _, f := range fields {
		h.Write(binary.AppendUvarint(n[:0], uint64(len(f))))
		h.Write([]byte(f))
	}
	return provider + "_" + hex.EncodeToString(h.Sum(nil)[:16])
}

// normalizeOne is the Normalize of a Splitter: the delivery must carry exactly one event.
func normalizeOne(s Splitter, h Headers, body []byte, ev *event.Event) error {
	reset(ev)
	parts, err := s.Split(h, body)
	if err != nil {
		return err
	}
	switch {
	case len(parts) == 1 && parts[0].Ignored != "":
		return unnormalizable("the delivery maps to no event: %s", parts[0].Ignored)
	case len(parts) != 1:
		return unnormalizable("the delivery carries %d events, not one", len(parts))
	}
	caller := *ev
	*ev = parts[0].Event
	ev.Source, ev.Provider, ev.ReceivedAt, ev.Raw = caller.Source, caller.Provider, caller.ReceivedAt, caller.Raw
	return nil
}

// narrowed sets the Raw of each event part to the delivery narrowed to it, by narrow(i) for
// the part from element i, when there are several elements; with one, Raw stays nil and the
// caller keeps the body verbatim.
func narrowed(parts []Part, narrow func(i int) []byte) []Part {
	if len(parts) < 2 {
		return parts
	}
	for i := range parts {
		if parts[i].Ignored == "" {
			parts[i].Event.Raw = narrow(i)
		}
	}
	return parts
}

// verifyPrefixed checks a header holding one signature of the raw body, after prefix, in
// enc: how Meta, X and GitHub-style senders sign.
func verifyPrefixed(h Headers, header, prefix string, enc sigEncoding, body []byte, keys []*Key) error {
	value := h.Peek(header)
	if len(value) == 0 {
		return failure.New(failure.Unauthorized, "missing %s header", header)
	}
	var sig [sha256.Size]byte
	if len(value) < len(prefix) || string(value[:len(prefix)]) != prefix || !decodeSig(&sig, value[len(prefix):], enc) {
		return failure.New(failure.Unauthorized, "malformed %s header: want %s%s", header, prefix, encodingName(enc))
	}
	if !signedBy(&sig, keys, body) {
		return failure.New(failure.Unauthorized, "signature does not match")
	}
	return nil
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

// rawKey is the Key of the presets that use the secret's bytes as they are.
func rawKey(preset, secret string) (*Key, error) {
	if secret == "" {
		return nil, errors.New(preset + ": empty secret")
	}
	return NewKey([]byte(secret)), nil
}
