package schemas_test

import (
	"errors"
	"testing"

	"github.com/socialbridge/bridge/bridge/event"
	"github.com/socialbridge/bridge/schemas"
)

// TestReaderDecodesBothFramings: a Reader reads what either codec wrote, resolving schema ids
// through the registry without registering anything, and tells undecodable values apart.
func TestReaderDecodesBothFramings(t *testing.T) {
	reg, _, cl := newRegistryCodec(t, "social.")
	single, _ := schemas.NewSingleObject()
	withRegistry, without := schemas.NewReader(cl), schemas.NewReader(nil)
	in := envelope(event.PostFailed)
	for name, enc := range map[string]schemas.Encoder{"registry": reg, "single-object": single} {
		value, err := enc.Encode(nil, in)
		if err != nil {
			t.Fatal(err)
		}
		var out event.Event
		if err := withRegistry.Decode(value, &out); err != nil || out.ID != in.ID || out.Type != in.Type {
			t.Errorf("%s: decoded %+v, %v", name, out, err)
		}
		err = without.Decode(value, &out)
		if name == "registry" && !errors.Is(err, schemas.ErrUnknownSchema) {
			t.Errorf("a schema id without a registry: %v, want ErrUnknownSchema", err)
		}
		if name == "single-object" && err != nil {
			t.Errorf("single-object without a registry: %v", err)
		}
	}
	var out event.Event
	if err := withRegistry.Decode([]byte{0, 0, 0, 0x7f, 0x7f, 2}, &out); !errors.Is(err, schemas.ErrUnknownSchema) {
		t.Errorf("an id the registry does not have: %v, want ErrUnknownSchema", err)
	}
	if err := withRegistry.Decode([]byte("{}"), &out); !errors.Is(err, schemas.ErrMalformed) {
		t.Errorf("JSON: %v, want ErrMalformed", err)
	}
}
