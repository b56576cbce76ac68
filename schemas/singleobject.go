package schemas

import (
	"encoding/hex"
	"fmt"

	"github.com/hamba/avro/v2"

	"github.com/socialbridge/bridge/event"
)

// SingleObject is the codec used without a schema registry: Avro single-object encoding,
// 0xC3 0x01, the schema's 8-byte fingerprint (Schema.Fingerprint) and the Avro binary
// record. A consumer resolves the fingerprint against the .avsc files of this package.
// It is safe for concurrent use.
type SingleObject struct{}

var (
	_ Encoder = (*SingleObject)(nil)
	_ Decoder = (*SingleObject)(nil)
)

// NewSingleObject returns the single-object codec for the schemas of this package.
func NewSingleObject() (*SingleObject, error) {
	return &SingleObject{}, nil
}

// Encode appends the single-object encoding of ev, with the schema of ev.Type, to dst.
func (*SingleObject) Encode(dst []byte, ev *event.Event) ([]byte, error) {
	if ev == nil {
		return dst, errNilEvent
	}
	c, ok := byType[ev.Type]
	if !ok {
		return dst, fmt.Errorf("%w %q", ErrUnknownType, ev.Type)
	}
	return c.appendFramed(dst, c.header[:], ev)
}

// Decode replaces *ev with the event in value. The fingerprint must be that of one of this
// package's schemas; anything else is ErrUnknownSchema.
func (o *SingleObject) Decode(value []byte, ev *event.Event) error {
	if err := zero(ev); err != nil {
		return err
	}
	t, s, body, err := o.unframe(value)
	if err != nil {
		return err
	}
	return decodeBody(t, s, body, ev)
}

// unframe returns the event type, the schema and the Avro body of value.
func (*SingleObject) unframe(value []byte) (string, avro.Schema, []byte, error) {
	if len(value) < 10 || value[0] != 0xC3 || value[1] != 0x01 {
		return "", nil, nil, fmt.Errorf("%w: no single-object header (C3 01 + 8-byte fingerprint)", ErrMalformed)
	}
	c, ok := byFingerprint[[8]byte(value[2:10])]
	if !ok {
		return "", nil, nil, fmt.Errorf("%w: fingerprint %s is none of %v", ErrUnknownSchema, hex.EncodeToString(value[2:10]), event.Types)
	}
	return c.Type, c.avro, value[10:], nil
}
