package schemas_test

import (
	"errors"
	"testing"

	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/schemas"
)

// TestSingleObjectHeaderAlone checks the shortest values Decode reads as framed: 10 bytes,
// the marker and a fingerprint, are a header (an unknown fingerprint is ErrUnknownSchema, a
// known one with no body is ErrMalformed), and 9 bytes are no header at all.
func TestSingleObjectHeaderAlone(t *testing.T) {
	o, err := schemas.NewSingleObject()
	if err != nil {
		t.Fatal(err)
	}
	known, err := o.Encode(nil, envelope(event.PostPublished))
	if err != nil {
		t.Fatal(err)
	}
	var ev event.Event
	for _, tc := range []struct {
		name  string
		value []byte
		want  error
	}{
		{"unknown fingerprint", []byte{0xC3, 0x01, 1, 2, 3, 4, 5, 6, 7, 8}, schemas.ErrUnknownSchema},
		{"known fingerprint, no body", known[:10], schemas.ErrMalformed},
		{"9 bytes", []byte{0xC3, 0x01, 1, 2, 3, 4, 5, 6, 7}, schemas.ErrMalformed},
	} {
		if err := o.Decode(tc.value, &ev); !errors.Is(err, tc.want) {
			t.Errorf("%s: Decode = %v, want %v", tc.name, err, tc.want)
		}
	}
}
