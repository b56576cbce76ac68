// Package schemas holds the Avro schemas of the canonical events (one .avsc per event type,
// the source of truth) and the codecs that frame them for Kafka. The Avro library stays
// behind the small Encoder and Decoder interfaces below, so it can be swapped.
package schemas

import "github.com/socialbridge/bridge/bridge/event"

// Encoder turns a canonical event into a Kafka record value.
type Encoder interface {
	// Encode appends the framed Avro encoding of ev (chosen by ev.Type) to dst.
	Encode(dst []byte, ev *event.Event) ([]byte, error)
}

// Decoder reads a record value written by an Encoder back into an event.
type Decoder interface {
	Decode(value []byte, ev *event.Event) error
}
