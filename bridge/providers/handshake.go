package providers

// A handshake (Meta's verification GET, X's CRC) answers whoever asks, with the source's keys.
// X's answer is the HMAC of its token under the key that signs deliveries, in the encoding of
// their signatures: were a token allowed to be a delivery's body, the CRC would sign forged
// deliveries (issue 14). Tokens are therefore opaque, and bodies JSON objects: the two never
// meet. TestNoHandshakeAnswerSignsADelivery holds every Handshaker to it.

// opaqueToken reports whether b is a handshake token of the shape providers send (a UUID, an
// integer, base64): 1 to max bytes of letters, digits and -._~+/=. None of these opens a JSON
// object, array or string, nor is JSON whitespace, so no such token is a JSON object.
func opaqueToken(b []byte, max int) bool {
	if len(b) == 0 || len(b) > max {
		return false
	}
	for _, c := range b {
		if !opaqueByte[c] {
			return false
		}
	}
	return true
}

var opaqueByte = func() (t [256]bool) {
	for _, c := range []byte("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~+/=") {
		t[c] = true
	}
	return t
}()

// jsonObject reports whether body is shaped as a JSON object: '{' after any JSON whitespace.
// It reads no further; whether the object is valid is for Normalize.
func jsonObject(body []byte) bool {
	for _, c := range body {
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		case '{':
			return true
		}
		return false
	}
	return false
}
