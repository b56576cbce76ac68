package consumers

import (
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/schemas"
)

// NewDecoder returns the decoder of the values the ingress writes: by fingerprint
// (single-object encoding) always, and by schema id through the registry when
// schema_registry.url is set. It registers nothing.
func NewDecoder(r config.SchemaRegistry) (schemas.Decoder, error) {
	rd, err := NewReader(r)
	if err != nil {
		return nil, err
	}
	return rd, nil
}

// NewReader is NewDecoder's decoder as what it is, a schemas.Reader, for a group that also
// reads values in part (Reader.DecodeOutcome).
func NewReader(r config.SchemaRegistry) (*schemas.Reader, error) {
	if r.URL == "" {
		return schemas.NewReader(nil)
	}
	opts := []sr.ClientOpt{sr.URLs(r.URL)}
	if r.Username != "" {
		opts = append(opts, sr.BasicAuth(r.Username, r.Password))
	}
	cl, err := sr.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("schema registry: %w", err)
	}
	return schemas.NewReader(cl)
}

// Undecodable reports whether a decode error means the value will never decode (malformed,
// or a schema nobody can resolve): such a record goes to the dead-letter topic. Any other
// decode error is transient (the registry unreachable) and the record is tried again.
func Undecodable(err error) bool {
	return errors.Is(err, schemas.ErrMalformed) || errors.Is(err, schemas.ErrUnknownSchema)
}
