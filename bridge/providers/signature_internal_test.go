package providers

import (
	"testing"
	"time"
)

// TestUnixSecondsBounds pins what a timestamp header may hold: 1 to 18 decimal digits, '0'
// and '9' included, their neighbours '/' and ':' refused, and each digit's value.
func TestUnixSecondsBounds(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true},
		{"9", 9, true},
		{"1767225609", 1767225609, true},
		{"987654321098765432", 987654321098765432, true}, // 18 digits
		{"9876543210987654321", 0, false},                // 19
		{"", 0, false},
		{"17672256/0", 0, false},
		{"17672256:0", 0, false},
		{"-1", 0, false},
	} {
		got, ok := unixSeconds([]byte(tc.in))
		if got != tc.want || ok != tc.ok {
			t.Errorf("unixSeconds(%q) = %d, %t; want %d, %t", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

// TestCheckAgeBounds pins the replay window's edges: a timestamp exactly tolerance before
// or after now is accepted, one second more is refused, and which way it is off is named.
func TestCheckAgeBounds(t *testing.T) {
	now := time.Unix(1767225600, 0)
	const tolerance = 5 * time.Minute
	for _, tc := range []struct {
		ts   string
		want string
	}{
		{"1767225600", ""},
		{"1767225300", ""}, // exactly 5 minutes old
		{"1767225900", ""}, // exactly 5 minutes ahead
		{"1767225299", "X-Ts too old: more than 5m0s before now"},
		{"1767225901", "X-Ts too new: more than 5m0s after now"},
	} {
		err := checkAge("X-Ts", []byte(tc.ts), now, tolerance)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tc.want {
			t.Errorf("checkAge(%s) = %q, want %q", tc.ts, got, tc.want)
		}
	}
}
