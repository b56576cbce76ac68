package schemas

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/socialbridge/bridge/bridge/event"
)

// Reader decodes a value in either framing the ingress writes, chosen by its first byte:
// single-object encoding (C3 01) resolved by fingerprint against this package's schemas, or
// the Confluent wire format (0) resolved by schema id through a registry. It registers
// nothing, so a consumer needs only read access to the registry. It is safe for concurrent
// use.
type Reader struct {
	single   SingleObject
	registry *Registry // nil without a registry
}

var _ Decoder = (*Reader)(nil)

// NewReader returns a Reader that resolves schema ids through cl; with a nil cl, a value in
// the Confluent wire format is ErrUnknownSchema (nothing can resolve its id).
func NewReader(cl *sr.Client) *Reader {
	r := &Reader{}
	if cl != nil {
		r.registry = &Registry{cl: cl, writing: map[string]*registered{}, reading: map[int]*readSchema{}}
	}
	return r
}

// Decode replaces *ev with the event in value. Errors wrap ErrMalformed or ErrUnknownSchema
// when the value will never decode; any other error (the registry unreachable) is transient.
func (r *Reader) Decode(value []byte, ev *event.Event) error {
	if len(value) > 0 && value[0] == 0 {
		if r.registry == nil {
			if err := zero(ev); err != nil {
				return err
			}
			return fmt.Errorf("%w: the value names a registry schema id, and no schema registry is configured", ErrUnknownSchema)
		}
		return r.registry.Decode(value, ev)
	}
	return r.single.Decode(value, ev)
}
