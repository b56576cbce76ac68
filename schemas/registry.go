package schemas

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/sr"
	"golang.org/x/sync/singleflight"

	"github.com/socialbridge/bridge/event"
)

// fetchTimeout bounds one schema lookup by id while decoding.
const fetchTimeout = 10 * time.Second

// Registry is the codec used with a schema registry: Confluent wire format, a 0 byte, the
// 4-byte big-endian schema id and the Avro binary record, with the schema of each event
// type registered under its subject (see Subject). It is safe for concurrent use.
type Registry struct {
	cl      *sr.Client
	writing map[string]*registered // by event type; read-only after NewRegistry

	mu      sync.RWMutex
	reading map[int]*readSchema // by schema id: ours, and others fetched on first sight
	fetches singleflight.Group  // one fetch of an unknown id at a time, shared by its callers
}

// framing is the Confluent wire format's header: franz-go's, so the two cannot disagree.
var framing sr.ConfluentHeader

var (
	_ Encoder = (*Registry)(nil)
	_ Decoder = (*Registry)(nil)
)

type registered struct {
	c       *compiled
	subject string
	header  []byte
}

// readSchema is how to read the records of one schema id: the writer's schema resolved
// against ours.
type readSchema struct {
	typ  string
	avro avro.Schema
}

// RegistryOptions are what a caller may set of NewRegistry beside the client and the topic
// prefix; the zero value registers the schemas.
type RegistryOptions struct {
	// LookUp looks each schema up under its subject instead of registering it, for registry
	// credentials that may only read: someone else registers the schemas.
	LookUp bool
}

// NewRegistry registers the schema of every event type under Subject(topicPrefix, type)
// (a no-op for a schema the subject already has), or with o.LookUp finds it there, and
// returns the codec that writes with those ids. It fails, naming the subject, if the
// registry refuses any of them (e.g. as incompatible with the subject's earlier versions)
// or, with o.LookUp, does not have it.
func NewRegistry(ctx context.Context, cl *sr.Client, topicPrefix string, o RegistryOptions) (*Registry, error) {
	if cl == nil {
		return nil, fmt.Errorf("schemas: NewRegistry: nil schema registry client")
	}
	r := &Registry{cl: cl, writing: make(map[string]*registered), reading: make(map[int]*readSchema)}
	for _, c := range loaded {
		if err := r.register(ctx, c, Subject(topicPrefix, c.Type), o.LookUp); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// NewRegistryReader returns a codec that only decodes: it registers nothing and fetches
// each schema id from the registry on first sight, as Decode describes. Its Encode fails
// with ErrUnknownType. It is for readers, such as `bridge tail`, that must not change the
// registry they read with.
func NewRegistryReader(cl *sr.Client) (*Registry, error) {
	if cl == nil {
		return nil, fmt.Errorf("schemas: NewRegistryReader: nil schema registry client")
	}
	return &Registry{cl: cl, writing: map[string]*registered{}, reading: map[int]*readSchema{}}, nil
}

// register finds the id of c's schema under subject, registering it unless lookUp.
func (r *Registry) register(ctx context.Context, c *compiled, subject string, lookUp bool) error {
	schema, verb := sr.Schema{Schema: c.Text, Type: sr.TypeAvro}, "register"
	var ss sr.SubjectSchema
	var err error
	if lookUp {
		verb = "look up"
		ss, err = r.cl.LookupSchema(ctx, subject, schema)
	} else {
		ss, err = r.cl.CreateSchema(ctx, subject, schema)
	}
	if err != nil {
		return fmt.Errorf("schemas: %s %s schema under subject %q: %w", verb, c.Type, subject, err)
	}
	if ss.ID < 0 || ss.ID > math.MaxInt32 {
		return fmt.Errorf("schemas: subject %q: registry returned schema id %d", subject, ss.ID)
	}
	reg := &registered{c: c, subject: subject}
	reg.header, _ = framing.AppendEncode(nil, ss.ID, nil) // its error is always nil
	r.writing[c.Type] = reg
	r.reading[ss.ID] = &readSchema{typ: c.Type, avro: c.avro}
	return nil
}

// Encode appends the Confluent wire format of ev, with the schema id of ev.Type, to dst.
func (r *Registry) Encode(dst []byte, ev *event.Event) ([]byte, error) {
	if ev == nil {
		return dst, errNilEvent
	}
	reg, ok := r.writing[ev.Type]
	if !ok {
		return dst, fmt.Errorf("%w %q", ErrUnknownType, ev.Type)
	}
	dst, err := reg.c.appendFramed(dst, reg.header, ev)
	if err != nil {
		return dst, fmt.Errorf("%w (subject %q)", err, reg.subject)
	}
	return dst, nil
}

// Decode replaces *ev with the event in value. A schema id other than the ones registered
// by NewRegistry (say, an older version of a subject) is fetched from the registry once and
// resolved against the current schema of the same record. An id the registry does not
// have, or whose schema is not one of the canonical records or not readable as its current
// version, is ErrUnknownSchema: the value will never decode. Any other fetch failure (the
// registry unreachable) is transient; the next Decode of that id asks again.
func (r *Registry) Decode(value []byte, ev *event.Event) error {
	if err := zero(ev); err != nil {
		return err
	}
	t, s, body, err := r.unframe(value)
	if err != nil {
		return err
	}
	return decodeBody(t, s, body, ev)
}

// unframe returns the event type, the schema to read with and the Avro body of value.
func (r *Registry) unframe(value []byte) (string, avro.Schema, []byte, error) {
	id, body, err := framing.DecodeID(value)
	if err != nil {
		return "", nil, nil, fmt.Errorf("%w: no schema registry header (0 + 4-byte schema id)", ErrMalformed)
	}
	s, err := r.schemaByID(id)
	if err != nil {
		return "", nil, nil, err
	}
	return s.typ, s.avro, body, nil
}

// schemaByID returns how to read records of schema id, fetching it on first sight; callers
// asking for the same id meanwhile share that one fetch. A failure is not remembered, so
// the next record retries.
func (r *Registry) schemaByID(id int) (*readSchema, error) {
	r.mu.RLock()
	s, ok := r.reading[id]
	r.mu.RUnlock()
	if ok {
		return s, nil
	}
	v, err, _ := r.fetches.Do(strconv.Itoa(id), func() (any, error) {
		typ, schema, err := r.resolve(id)
		if err != nil {
			return nil, err
		}
		s := &readSchema{typ: typ, avro: schema}
		r.mu.Lock()
		r.reading[id] = s
		r.mu.Unlock()
		return s, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*readSchema), nil
}

func (r *Registry) resolve(id int) (string, avro.Schema, error) {
	ctx, cancel := context.WithTimeout(context.Background(), fetchTimeout)
	defer cancel()
	fetched, err := r.cl.SchemaByID(ctx, id)
	var notFound *sr.ResponseError
	if errors.As(err, &notFound) && notFound.StatusCode == http.StatusNotFound {
		return "", nil, fmt.Errorf("%w: schema id %d: %w", ErrUnknownSchema, id, err)
	}
	if err != nil {
		return "", nil, fmt.Errorf("schemas: fetch schema id %d: %w", id, err)
	}
	if fetched.Type != sr.TypeAvro || len(fetched.References) > 0 {
		return "", nil, fmt.Errorf("%w: schema id %d is not a self-contained Avro schema", ErrUnknownSchema, id)
	}
	writer, err := parse(fetched.Schema)
	if err != nil {
		return "", nil, fmt.Errorf("%w: schema id %d: %w", ErrUnknownSchema, id, err)
	}
	name := writer.(*avro.RecordSchema).FullName()
	c, ok := byName[name]
	if !ok {
		return "", nil, fmt.Errorf("%w: schema id %d is record %s, not a canonical event", ErrUnknownSchema, id, name)
	}
	resolved, err := avro.NewSchemaCompatibility().Resolve(c.avro, writer)
	if err != nil {
		return "", nil, fmt.Errorf("%w: schema id %d cannot be read as the current %s schema: %w", ErrUnknownSchema, id, c.Type, err)
	}
	return c.Type, resolved, nil
}
