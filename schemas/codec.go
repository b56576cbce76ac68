// Package schemas holds the Avro schemas of the canonical events (one .avsc per event type,
// the source of truth) and the codecs that frame them for Kafka. The Avro library stays
// behind the small Encoder and Decoder interfaces below, so it can be swapped.
//
// Changing a schema: consumers read every record with the current schemas, so each change
// must let the new schema read data written with the last released one (checked against
// testdata/ by TestBackwardCompatible). In practice: add a typed field as
// ["null", T] with "default": null; never remove, rename or retype a field.
package schemas

import (
	"errors"

	"github.com/socialbridge/bridge/event"
)

// Encoder turns a canonical event into a Kafka record value.
type Encoder interface {
	// Encode appends the framed Avro encoding of ev (chosen by ev.Type) to dst.
	Encode(dst []byte, ev *event.Event) ([]byte, error)
}

// Decoder reads a record value written by an Encoder back into an event.
type Decoder interface {
	// Decode replaces *ev with the event in value. For a value the matching Encoder could
	// not have written it returns an error, never panics, and leaves *ev zero.
	Decode(value []byte, ev *event.Event) error
}

// Errors returned by the codecs, wrapped with the detail (type, fingerprint, schema id);
// test for them with errors.Is.
var (
	// ErrUnknownType: the event's type has no schema here.
	ErrUnknownType = errors.New("schemas: unknown event type")
	// ErrUnknownSchema: a value names a schema (by fingerprint or registry id) this codec
	// cannot resolve to one of the canonical event schemas.
	ErrUnknownSchema = errors.New("schemas: unknown schema")
	// ErrMalformed: a value is not a well-formed framed Avro record.
	ErrMalformed = errors.New("schemas: malformed value")

	errNilEvent = errors.New("schemas: nil event")
)
