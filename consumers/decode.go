package consumers

import (
	"errors"

	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/internal/kafkaconn"
	"github.com/socialbridge/bridge/schemas"
)

// NewReader returns the reader of the values the ingress writes: by fingerprint
// (single-object encoding) always, and by schema id through the registry when
// schema_registry.url is set. It registers nothing. Reader.DecodeOutcome and the like read
// only what a group needs of a value.
func NewReader(r config.SchemaRegistry) (*schemas.Reader, error) {
	cl, err := kafkaconn.Registry(r)
	if err != nil {
		return nil, err
	}
	return schemas.NewReader(cl)
}

// Undecodable reports whether a decode error means the value will never decode (malformed,
// or a schema nobody can resolve): such a record goes to the dead-letter topic. Any other
// decode error is transient (the registry unreachable) and the record is tried again.
func Undecodable(err error) bool {
	return errors.Is(err, schemas.ErrMalformed) || errors.Is(err, schemas.ErrUnknownSchema)
}
