package schemas_test

import (
	"testing"

	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/schemas"
)

// FuzzSingleObjectDecode: any input either fails to decode or decodes to an event that
// survives another round trip unchanged. Never a panic.
func FuzzSingleObjectDecode(f *testing.F) {
	so, err := schemas.NewSingleObject()
	if err != nil {
		f.Fatal(err)
	}
	for _, typ := range event.Types {
		for _, ev := range []*event.Event{everything(typ), envelope(typ)} {
			value, err := so.Encode(nil, ev)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(value)
		}
	}
	f.Fuzz(func(t *testing.T, value []byte) {
		var first event.Event
		if err := so.Decode(value, &first); err != nil {
			return
		}
		again, err := so.Encode(nil, &first)
		if err != nil {
			t.Fatalf("re-encode of a decoded event: %v", err)
		}
		var second event.Event
		if err := so.Decode(again, &second); err != nil {
			t.Fatalf("decode of a re-encoded event: %v", err)
		}
		for _, d := range diff(&first, &second) {
			t.Error(d)
		}
	})
}
