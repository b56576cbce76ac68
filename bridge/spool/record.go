package spool

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/bridge/dedup"
)

// An entry frame's payload is what the ingress would have produced, so that the drainer
// produces the same record (topic, key, value, headers, timestamp):
//
//	seq        uvarint
//	flags      1 byte: flagUnverified
//	timestamp  varint, unix nanoseconds
//	topic      string
//	key        bytes or nil
//	value      bytes or nil
//	headers    uvarint count, then key string and value bytes-or-nil each
//
// A string is its uvarint length and bytes; "bytes or nil" is its uvarint length + 1 and
// bytes, 0 standing for nil (Kafka tells a null key from an empty one).

// flagUnverified marks an entry spooled while the dedup store could not be asked: it is
// checked against the store (a duplicate is dropped) before it may be produced.
const flagUnverified = 1

// appendRecord appends what follows seq and flags in an entry's payload; the writer adds
// those (appendEntryBody), since it numbers the entries in the order it writes them.
func appendRecord(b []byte, rec *kgo.Record) []byte {
	b = binary.AppendVarint(b, rec.Timestamp.UnixNano())
	b = appendString(b, rec.Topic)
	b = appendNullable(b, rec.Key)
	b = appendNullable(b, rec.Value)
	b = binary.AppendUvarint(b, uint64(len(rec.Headers)))
	for _, h := range rec.Headers {
		b = appendString(b, h.Key)
		b = appendNullable(b, h.Value)
	}
	return b
}

func appendEntryBody(b []byte, seq uint64, flags byte, record []byte) []byte {
	return append(append(binary.AppendUvarint(b, seq), flags), record...)
}

// entryOverhead bounds what a frame adds to its encoded record: header, kind, seq, flags.
const entryOverhead = frameHeader + 1 + binary.MaxVarintLen64 + 1

// recordSize bounds the encoding of rec, to size its buffer at once.
func recordSize(rec *kgo.Record) int {
	n := 4*binary.MaxVarintLen64 + len(rec.Topic) + len(rec.Key) + len(rec.Value)
	for _, h := range rec.Headers {
		n += 2*binary.MaxVarintLen64 + len(h.Key) + len(h.Value)
	}
	return n
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

func appendNullable(b []byte, v []byte) []byte {
	if v == nil {
		return append(b, 0)
	}
	return append(binary.AppendUvarint(b, uint64(len(v))+1), v...)
}

// entry is an entry frame read back.
type entry struct {
	seq   uint64
	flags byte
	rec   *kgo.Record
}

// readEntry decodes an entry's payload into a record whose key, value and header values are
// parts of p.
func readEntry(p []byte) (entry, error) {
	d := decoder{b: p}
	e := entry{seq: d.uvarint(), flags: d.byte(), rec: &kgo.Record{}}
	e.rec.Timestamp = time.Unix(0, d.varint())
	e.rec.Topic = string(d.bytes())
	e.rec.Key = d.nullable()
	e.rec.Value = d.nullable()
	n := d.uvarint()
	if n > uint64(len(p)) {
		return entry{}, errTorn
	}
	e.rec.Headers = make([]kgo.RecordHeader, 0, n)
	for range n {
		k := string(d.bytes())
		e.rec.Headers = append(e.rec.Headers, kgo.RecordHeader{Key: k, Value: d.nullable()})
	}
	return e, d.end()
}

// identity is what a record is deduplicated on: its source header, and its dedup.KeyHeader
// header or else its key (the event id), as the dedup rebuild reads them.
func identity(rec *kgo.Record) (source, key string) {
	k := rec.Key
	for _, h := range rec.Headers {
		switch h.Key {
		case "source":
			source = string(h.Value)
		case dedup.KeyHeader:
			k = h.Value
		}
	}
	return source, string(k)
}

var errNoIdentity = errors.New("spool: a record without a source header or key cannot be spooled")

// decoder reads a payload; past its end it returns zeros and remembers the error.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail() { d.err, d.b = errTorn, nil }

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte() byte {
	if len(d.b) == 0 {
		d.fail()
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) take(n uint64) []byte {
	if n > uint64(len(d.b)) {
		d.fail()
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes() []byte { return d.take(d.uvarint()) }

func (d *decoder) nullable() []byte {
	n := d.uvarint()
	if n == 0 || d.err != nil {
		return nil
	}
	return d.take(n - 1)
}

// end reports the error of a payload that was short, or longer than what was read.
func (d *decoder) end() error {
	if d.err == nil && len(d.b) > 0 {
		return errTorn
	}
	return d.err
}
