package providers

import (
	"strconv"
	"strings"
	"testing"
)

// TestShortenBounds pins where an error message cuts a value: 64 bytes are kept whole, 65
// are cut to 64 and an ellipsis, never inside a UTF-8 character, and at most 4 bytes back
// when the value is not UTF-8 at all; quote cuts from 68 bytes on.
func TestShortenBounds(t *testing.T) {
	a64 := strings.Repeat("a", 64)
	for _, tc := range []struct{ name, in, want string }{
		{"64 bytes", a64, a64},
		{"65 bytes", a64 + "b", a64 + "…"},
		{"a 2-byte character across the cut", a64[:63] + "é" + "bbb", a64[:63] + "…"},
		{"a 4-byte character across the cut", a64[:61] + "😀" + "bbb", a64[:61] + "…"},
		{"no character start near the cut", strings.Repeat("\x80", 70), strings.Repeat("\x80", 60) + "…"},
	} {
		if got := shorten(tc.in); got != tc.want {
			t.Errorf("%s: shorten = %q, want %q", tc.name, got, tc.want)
		}
	}
	// quote cuts only where that makes the text shorter: the ellipsis takes 3 bytes.
	for _, tc := range []struct{ in, want string }{
		{a64 + "bbb", strconv.Quote(a64 + "bbb")},
		{a64 + "bbbb", strconv.Quote(a64) + "…"},
	} {
		if got := quote(tc.in); got != tc.want {
			t.Errorf("quote(%d bytes) = %s, want %s", len(tc.in), got, tc.want)
		}
	}
}
