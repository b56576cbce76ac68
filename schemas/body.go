package schemas

import (
	"errors"
	"fmt"
	"sync"

	"github.com/hamba/avro/v2"

	"github.com/socialbridge/bridge/event"
)

// maxFieldBytes bounds one string or bytes field when decoding, so a corrupt length prefix
// cannot make the decoder allocate without limit. Far above any webhook body we accept.
const maxFieldBytes = 16 << 20

// maxPooledBuffer keeps an occasional huge record from pinning its buffer in the pool.
const maxPooledBuffer = 64 << 10

var (
	avroAPI = avro.Config{MaxByteSliceSize: maxFieldBytes}.Freeze()

	// Our own pools: avro.Marshal copies its output into a fresh slice on every call,
	// where we append straight from a pooled Writer into the caller's dst.
	writers = sync.Pool{New: func() any { return avro.NewWriter(nil, 1024, avro.WithWriterConfig(avroAPI)) }}
	readers = sync.Pool{New: func() any { return avro.NewReader(nil, 0, avro.WithReaderConfig(avroAPI)) }}
)

// appendFramed appends header and then the Avro binary encoding of ev under c to dst,
// growing dst at most once.
func (c *compiled) appendFramed(dst, header []byte, ev *event.Event) ([]byte, error) {
	w := writers.Get().(*avro.Writer)
	defer putWriter(w)
	w.WriteVal(c.avro, ev)
	if w.Error != nil {
		return dst, fmt.Errorf("schemas: encode %s: %w", c.Type, w.Error)
	}
	body := w.Buffer()
	if need := len(header) + len(body); cap(dst)-len(dst) < need {
		dst = append(make([]byte, 0, len(dst)+need), dst...)
	}
	dst = append(dst, header...)
	return append(dst, body...), nil
}

func putWriter(w *avro.Writer) {
	if cap(w.Buffer()) > maxPooledBuffer {
		return
	}
	w.Error = nil
	w.Reset(nil)
	writers.Put(w)
}

// zero zeroes *ev before a decode, so that it is zero on any error.
func zero(ev *event.Event) error {
	if ev == nil {
		return errNilEvent
	}
	*ev = event.Event{}
	return nil
}

// decodeBody fills the zeroed *ev with the record of type t in data, read with s (c.avro, or a
// writer's schema resolved against it). data must hold exactly that one record; on error
// *ev is left zero.
func decodeBody(t string, s avro.Schema, data []byte, ev *event.Event) error {
	if err := readBody(s, data, ev); err != nil {
		*ev = event.Event{}
		return fmt.Errorf("%w: %s: %w", ErrMalformed, t, err)
	}
	if ev.Type != t {
		*ev = event.Event{}
		return fmt.Errorf("%w: %s record says event_type %q", ErrMalformed, t, ev.Type)
	}
	return nil
}

// readBody reads the one record in data, with s, into v: an *event.Event, *withoutRaw or *Outcome.
func readBody(s avro.Schema, data []byte, v any) error {
	r := readers.Get().(*avro.Reader)
	defer putReader(r)
	r.Reset(data)
	r.ReadVal(s, v)
	if r.Error != nil {
		return r.Error
	}
	if r.Peek(); r.Error == nil {
		return errors.New("trailing bytes after the record")
	}
	return nil
}

func putReader(r *avro.Reader) {
	r.Reset(nil)
	r.Error = nil
	readers.Put(r)
}
