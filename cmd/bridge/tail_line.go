package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/consumers"
	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/schemas"
)

// newValueDecoder reads values in either framing, resolving schema ids through the
// registry when one is configured.
func newValueDecoder(r config.SchemaRegistry) (*schemas.Reader, error) {
	rd, err := consumers.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("tail: %w", err)
	}
	return rd, nil
}

// line is one record as `bridge tail` prints it. Value is the decoded event; for the
// deadletter, the raw body as text; for a value that does not decode, its bytes in base64
// with the reason in ValueError.
type line struct {
	Topic      string            `json:"topic"`
	Partition  int32             `json:"partition"`
	Offset     int64             `json:"offset"`
	Timestamp  string            `json:"timestamp"`
	Key        string            `json:"key"`
	Headers    map[string]string `json:"headers"`
	Value      json.RawMessage   `json:"value"`
	ValueError string            `json:"value_error,omitempty"`
}

// lineWriter prints records as JSON lines.
type lineWriter struct {
	out        io.Writer
	dec        *schemas.Reader
	deadletter string // its values are raw bodies, not Avro
	buf        bytes.Buffer
}

func (w *lineWriter) write(r *kgo.Record) error {
	l := line{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Key: string(r.Key),
		Timestamp: r.Timestamp.UTC().Format(time.RFC3339Nano), Headers: make(map[string]string, len(r.Headers))}
	for _, h := range r.Headers {
		l.Headers[h.Key] = string(h.Value)
	}
	l.Value, l.ValueError = w.value(r)
	w.buf.Reset()
	enc := json.NewEncoder(&w.buf)
	enc.SetEscapeHTML(false) // bodies and URLs stay readable
	if err := enc.Encode(l); err != nil {
		return err
	}
	_, err := w.out.Write(w.buf.Bytes())
	return err
}

// value is the record's value as JSON (see line), and why it could not be decoded.
func (w *lineWriter) value(r *kgo.Record) (json.RawMessage, string) {
	if r.Topic == w.deadletter {
		return jsonText(r.Value), ""
	}
	var ev event.Event
	err := w.dec.Decode(r.Value, &ev)
	if errors.Is(err, schemas.ErrUnknownSchema) && len(r.Value) > 0 && r.Value[0] == 0 {
		err = fmt.Errorf("%w: give --registry URL, or a --config with schema_registry.url", err)
	}
	if err == nil {
		var v json.RawMessage
		if v, err = eventJSON(&ev); err == nil {
			return v, ""
		}
	}
	return jsonText([]byte(base64.StdEncoding.EncodeToString(r.Value))), err.Error() + " (value shown in base64)"
}

func jsonText(b []byte) json.RawMessage {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(string(b)) // a string always encodes
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// eventJSON renders ev as a JSON object with the fields of its type's schema, in the
// schema's order and under its names: timestamps in RFC 3339, raw_payload as text.
func eventJSON(ev *event.Event) (json.RawMessage, error) {
	fields, err := schemaFields(ev.Type)
	if err != nil {
		return nil, err
	}
	v := reflect.ValueOf(ev).Elem()
	var b bytes.Buffer
	b.WriteByte('{')
	for i, f := range fields {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(jsonText([]byte(f.name)))
		b.WriteByte(':')
		b.Write(fieldJSON(v.Field(f.index)))
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func fieldJSON(f reflect.Value) []byte {
	if f.Kind() == reflect.Pointer {
		if f.IsNil() {
			return []byte("null")
		}
		f = f.Elem()
	}
	switch v := f.Interface().(type) {
	case time.Time:
		return jsonText([]byte(v.UTC().Format(time.RFC3339Nano)))
	case []byte:
		return jsonText(v)
	case string:
		return jsonText([]byte(v))
	}
	b, _ := json.Marshal(f.Interface()) // bool or int32
	return b
}

// field is one field of a schema: its Avro name and the event.Event field that holds it.
type field struct {
	name  string
	index int
}

var (
	fieldsMu sync.Mutex
	fields   = map[string][]field{}
)

// schemaFields lists the fields of event type t's schema, in order, read once from its
// .avsc text and matched to event.Event by the avro tags.
func schemaFields(t string) ([]field, error) {
	fieldsMu.Lock()
	defer fieldsMu.Unlock()
	if fs, ok := fields[t]; ok {
		return fs, nil
	}
	s, ok := schemas.ForType(t)
	if !ok {
		return nil, fmt.Errorf("no schema for event type %q", t)
	}
	var avsc struct {
		Fields []struct{ Name string } `json:"fields"`
	}
	if err := json.Unmarshal([]byte(s.Text), &avsc); err != nil {
		return nil, fmt.Errorf("schema of %s: %w", t, err)
	}
	byTag := map[string]int{}
	et := reflect.TypeFor[event.Event]()
	for i := range et.NumField() {
		byTag[et.Field(i).Tag.Get("avro")] = i
	}
	out := make([]field, 0, len(avsc.Fields))
	for _, f := range avsc.Fields {
		i, ok := byTag[f.Name]
		if !ok {
			return nil, fmt.Errorf("schema of %s: field %s has no counterpart in event.Event", t, f.Name)
		}
		out = append(out, field{f.Name, i})
	}
	fields[t] = out
	return out, nil
}
