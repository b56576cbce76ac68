package schemas_test

import (
	"errors"
	"testing"
	"time"

	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/schemas"
)

// outcomeOf is the Outcome of a fully decoded event.
func outcomeOf(ev *event.Event) schemas.Outcome {
	return schemas.Outcome{Type: ev.Type, OccurredAt: ev.OccurredAt, ProfileName: ev.ProfileName, Platform: ev.Platform,
		ScheduledAt: ev.ScheduledAt, PublishedAt: ev.PublishedAt}
}

func sameOutcome(a, b schemas.Outcome) bool {
	str := func(x, y *string) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) }
	times := func(x, y *time.Time) bool { return (x == nil) == (y == nil) && (x == nil || x.Equal(*y)) }
	return a.Type == b.Type && a.OccurredAt.Equal(b.OccurredAt) && str(a.ProfileName, b.ProfileName) &&
		str(a.Platform, b.Platform) && times(a.ScheduledAt, b.ScheduledAt) && times(a.PublishedAt, b.PublishedAt)
}

// TestDecodeOutcome: for every event type, in both framings, DecodeOutcome reads what
// Decode reads of the same value, and refuses what Decode refuses.
func TestDecodeOutcome(t *testing.T) {
	reader, codecs := outcomeCodecs(t)
	for name, c := range codecs {
		for _, typ := range event.Types {
			for _, in := range []*event.Event{envelope(typ), everything(typ)} {
				v, err := c.Encode(nil, in)
				if err != nil {
					t.Fatal(err)
				}
				var full event.Event
				if err := reader.Decode(v, &full); err != nil {
					t.Fatalf("%s %s: decode: %v", name, typ, err)
				}
				var got schemas.Outcome
				if err := reader.DecodeOutcome(v, &got); err != nil {
					t.Fatalf("%s %s: decode outcome: %v", name, typ, err)
				}
				if want := outcomeOf(&full); !sameOutcome(got, want) {
					t.Errorf("%s %s: outcome %+v, want %+v", name, typ, got, want)
				}
				// A value cut short or with a byte too many decodes neither way.
				for _, bad := range [][]byte{v[:len(v)-1], append(v[:len(v):len(v)], 0)} {
					got = schemas.Outcome{Type: "left over"}
					err := reader.DecodeOutcome(bad, &got)
					if !errors.Is(err, schemas.ErrMalformed) || got != (schemas.Outcome{}) {
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
	var o schemas.Outcome
	for _, v := range [][]byte{nil, []byte("not avro"), {0xC3, 0x01, 1, 2, 3, 4, 5, 6, 7, 8, 0}, {0, 0, 0, 0, 1, 2}} {
		err := withoutRegistry.DecodeOutcome(v, &o)
		if !errors.Is(err, schemas.ErrMalformed) && !errors.Is(err, schemas.ErrUnknownSchema) {
			t.Errorf("%x: %v, want malformed or unknown schema", v, err)
		}
	}
}

// outcomeCodecs returns a Reader with a registry client and the codecs whose values it
// reads: single-object, and the registry's.
func outcomeCodecs(t testing.TB) (*schemas.Reader, map[string]codec) {
	t.Helper()
	so, err := schemas.NewSingleObject()
	if err != nil {
		t.Fatal(err)
	}
	reg, _, cl := newRegistryCodec(t, "social.")
	reader, err := schemas.NewReader(cl)
	if err != nil {
		t.Fatal(err)
	}
	return reader, map[string]codec{"single-object": so, "registry": reg}
}

// BenchmarkDecodeOutcome is BenchmarkDecode's typical event read as an Outcome.
func BenchmarkDecodeOutcome(b *testing.B) {
	reader, codecs := outcomeCodecs(b)
	for name, c := range codecs {
		value, err := c.Encode(nil, typical())
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(value)))
			var o schemas.Outcome
			for b.Loop() {
				if err := reader.DecodeOutcome(value, &o); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
