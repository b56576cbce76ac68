package schemas_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/schemas"
)

// TestDecodeWithoutRaw: for every event type, in both framings, DecodeWithoutRaw reads
// what Decode reads of the same value but the raw payload, and refuses what Decode refuses.
func TestDecodeWithoutRaw(t *testing.T) {
	reader, codecs := outcomeCodecs(t)
	for name, c := range codecs {
		for _, typ := range event.Types {
			for _, in := range []*event.Event{envelope(typ), everything(typ)} {
				v, err := c.Encode(nil, in)
				if err != nil {
					t.Fatal(err)
				}
				var want, got event.Event
				if err := reader.Decode(v, &want); err != nil {
					t.Fatalf("%s %s: decode: %v", name, typ, err)
				}
				got.Raw = []byte("left over")
				if err := reader.DecodeWithoutRaw(v, &got); err != nil {
					t.Fatalf("%s %s: decode without raw: %v", name, typ, err)
				}
				if got.Raw != nil {
					t.Errorf("%s %s: Raw %q, want nil", name, typ, got.Raw)
				}
				if want.Raw = nil; !reflect.DeepEqual(got, want) {
					t.Errorf("%s %s: %+v, want %+v", name, typ, got, want)
				}
				for _, bad := range [][]byte{v[:len(v)-1], append(v[:len(v):len(v)], 0)} {
					got = event.Event{ID: "left over"}
					err := reader.DecodeWithoutRaw(bad, &got)
					if !errors.Is(err, schemas.ErrMalformed) || !reflect.DeepEqual(got, event.Event{}) {
						t.Errorf("%s %s: bad value: %v, %+v", name, typ, err, got)
					}
				}
			}
		}
	}
	withoutRegistry, err := schemas.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	var ev event.Event
	for _, v := range [][]byte{nil, []byte("not avro"), {0xC3, 0x01, 1, 2, 3, 4, 5, 6, 7, 8, 0}, {0, 0, 0, 0, 1, 2}} {
		err := withoutRegistry.DecodeWithoutRaw(v, &ev)
		if !errors.Is(err, schemas.ErrMalformed) && !errors.Is(err, schemas.ErrUnknownSchema) {
			t.Errorf("%x: %v, want malformed or unknown schema", v, err)
		}
	}
}

// BenchmarkDecodeWithoutRaw is BenchmarkDecode's typical event read without its payload.
func BenchmarkDecodeWithoutRaw(b *testing.B) {
	reader, codecs := outcomeCodecs(b)
	for name, c := range codecs {
		value, err := c.Encode(nil, typical())
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(value)))
			var ev event.Event
			for b.Loop() {
				if err := reader.DecodeWithoutRaw(value, &ev); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
