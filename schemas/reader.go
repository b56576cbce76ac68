package schemas

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/socialbridge/bridge/event"
)

// Reader decodes values in either framing the bridge writes, told apart by their first
// byte: single-object encoding (C3 01) by fingerprint, and the schema registry's wire
// format (00) by schema id. It is for readers that do not know, or should not care, how
// the bridge was configured. It is safe for concurrent use.
type Reader struct {
	single   *SingleObject
	registry *Registry // nil: registry-framed values cannot be resolved
}

var _ Decoder = (*Reader)(nil)

// errNoRegistry: a registry-framed value given to a Reader without a registry client.
var errNoRegistry = fmt.Errorf("%w: the value is framed for a schema registry (00 + schema id) and no registry was given", ErrUnknownSchema)

// NewReader returns a Reader. With cl nil it decodes single-object values only; with a
// registry client it also resolves schema ids through it, registering nothing.
func NewReader(cl *sr.Client) (*Reader, error) {
	r := &Reader{single: &SingleObject{}}
	if cl == nil {
		return r, nil
	}
	reg, err := NewRegistryReader(cl)
	if err != nil {
		return nil, err
	}
	r.registry = reg
	return r, nil
}

// Decode replaces *ev with the event in value, like the codec of value's framing. A
// registry-framed value without a registry client is ErrUnknownSchema.
func (r *Reader) Decode(value []byte, ev *event.Event) error {
	if len(value) == 0 || value[0] != 0 {
		return r.single.Decode(value, ev)
	}
	if r.registry == nil {
		if err := zero(ev); err != nil {
			return err
		}
		return errNoRegistry
	}
	return r.registry.Decode(value, ev)
}
