package schemas

import (
	"embed"
	"fmt"
	"io/fs"
	"path"

	"github.com/hamba/avro/v2"

	"github.com/socialbridge/bridge/event"
)

//go:embed *.avsc
var files embed.FS

// Schema is the Avro schema of one canonical event type, as shipped in this package.
type Schema struct {
	Type string // canonical event type, e.g. "post.published"
	Name string // full record name, e.g. "social.events.PostPublished"
	Text string // the .avsc file verbatim: what is registered and what consumers resolve
	// Fingerprint is the CRC-64-AVRO (Rabin) fingerprint of the schema's Parsing Canonical
	// Form, in little-endian byte order: the bytes of a single-object encoding header.
	Fingerprint [8]byte
}

// compiled is a Schema parsed once, with what the codecs need on the hot path.
type compiled struct {
	Schema
	avro   avro.Schema
	header [10]byte // single-object encoding header
}

var (
	loaded        []*compiled // in event.Types order
	byType        map[string]*compiled
	byName        map[string]*compiled
	byFingerprint map[[8]byte]*compiled
)

func init() {
	var err error
	if loaded, err = load(files); err != nil {
		panic(err)
	}
	byType = make(map[string]*compiled, len(loaded))
	byName = make(map[string]*compiled, len(loaded))
	byFingerprint = make(map[[8]byte]*compiled, len(loaded))
	for _, c := range loaded {
		byType[c.Type] = c
		byName[c.Name] = c
		byFingerprint[c.Fingerprint] = c
	}
}

// All returns the schema of every canonical event type, in the order of event.Types.
func All() []Schema {
	out := make([]Schema, len(loaded))
	for i, c := range loaded {
		out[i] = c.Schema
	}
	return out
}

// ForType returns the schema of the canonical event type t, and whether there is one.
func ForType(t string) (Schema, bool) {
	c, ok := byType[t]
	if !ok {
		return Schema{}, false
	}
	return c.Schema, true
}

// Subject is the schema-registry subject of eventType's record values under Confluent's
// TopicNameStrategy: the topic {topicPrefix}{eventType} plus "-value".
func Subject(topicPrefix, eventType string) string {
	return topicPrefix + eventType + "-value"
}

// load parses one .avsc per canonical type from fsys and refuses any other .avsc, so a
// schema file cannot be added or renamed without the event type that goes with it.
func load(fsys fs.FS) ([]*compiled, error) {
	names, err := fs.Glob(fsys, "*.avsc")
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		if t := n[:len(n)-len(path.Ext(n))]; !event.Known(t) {
			return nil, fmt.Errorf("schemas: %s has no canonical event type %q", n, t)
		}
	}
	out := make([]*compiled, 0, len(event.Types))
	for _, t := range event.Types {
		text, err := fs.ReadFile(fsys, t+".avsc")
		if err != nil {
			return nil, fmt.Errorf("schemas: %s: %w", t, err)
		}
		c, err := compile(t, string(text))
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// compile parses the schema text of event type t; each schema gets its own name cache, so
// versions of the same record (ours and ones fetched from a registry) never collide.
func compile(t, text string) (*compiled, error) {
	s, err := parse(text)
	if err != nil {
		return nil, fmt.Errorf("schemas: %s: %w", t, err)
	}
	fp, err := fingerprint(s)
	if err != nil {
		return nil, fmt.Errorf("schemas: %s: %w", t, err)
	}
	c := &compiled{
		Schema: Schema{Type: t, Name: s.(*avro.RecordSchema).FullName(), Text: text, Fingerprint: fp},
		avro:   s,
	}
	c.header = [10]byte{0xC3, 0x01}
	copy(c.header[2:], fp[:])
	return c, nil
}

// parse parses an Avro schema that must be a record, with a cache of its own.
func parse(text string) (avro.Schema, error) {
	s, err := avro.ParseWithCache(text, "", &avro.SchemaCache{})
	if err != nil {
		return nil, err
	}
	if s.Type() != avro.Record {
		return nil, fmt.Errorf("schema is a %s, not a record", s.Type())
	}
	return s, nil
}
