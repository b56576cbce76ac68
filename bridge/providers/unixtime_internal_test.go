package providers

import (
	"testing"
	"time"

	"github.com/go-json-experiment/json/jsontext"
)

// TestUnixTimeBounds pins which numbers unixTime reads as unix seconds: from 0 up to, not
// including, 4 × (2^31 − 1), with their fraction as nanoseconds.
func TestUnixTimeBounds(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{`0`, time.Unix(0, 0), true},
		{`"1767225600.5"`, time.Unix(1767225600, 500_000_000), true},
		{`8589934587`, time.Unix(8589934587, 0), true},
		{`8589934588`, time.Time{}, false},
		{`-1`, time.Time{}, false},
	} {
		got, ok := unixTime(jsontext.Value(tc.in))
		if ok != tc.ok || ok && !got.Equal(tc.want) {
			t.Errorf("unixTime(%s) = %v, %t; want %v, %t", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}
