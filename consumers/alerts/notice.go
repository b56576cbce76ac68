package alerts

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/event"
)

// notice is what deciding on one input record needs of it, and no more: it is the value of
// the record's copy in the keyed topic. Carrying this instead of the whole event (with its
// raw payload) keeps the keyed topic small and its records cheap to read; Origin says
// where the whole event is.
type notice struct {
	Type         string
	ID           string
	Key          Key
	Provider     string
	PostID       string
	ReconnectURL string
	PostURL      string
	OccurredAt   time.Time
	ReceivedAt   time.Time
	Origin       origin
	// trace is the traceparent of the span deciding on the notice, with tracing on; not
	// encoded (the keyed record's own traceparent header leads to that span).
	trace string
}

// origin is where an input record was read.
type origin struct {
	Topic     string
	Partition int32
	Offset    int64
}

func noticeOf(ev *event.Event, r *kgo.Record) notice {
	return notice{
		Type: ev.Type, ID: ev.ID, Key: keyOf(ev), Provider: ev.Provider, PostID: deref(ev.PostID),
		ReconnectURL: deref(ev.ReconnectURL), PostURL: deref(ev.PlatformPostURL),
		OccurredAt: ev.OccurredAt, ReceivedAt: ev.ReceivedAt,
		Origin: origin{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset},
	}
}

// The encoding of a notice: noticeMagic, noticeVersion, then the fields in the order of
// the struct, each string as its length (uvarint) and bytes, each time as Unix seconds
// (varint) and nanoseconds (uvarint), the partition and offset as varints. The first byte
// tells it apart from an Avro value (00 or C3), which the keyed topic held before.
const (
	noticeMagic   = 'k'
	noticeVersion = 1
)

var (
	errNotNotice = errors.New("not a notice")
	errBadNotice = errors.New("malformed notice")
)

// appendTo appends n's encoding to dst.
func (n *notice) appendTo(dst []byte) []byte {
	dst = append(dst, noticeMagic, noticeVersion)
	for _, s := range [...]string{n.Type, n.ID, n.Key.Source, n.Key.Profile, n.Key.Platform, n.Provider, n.PostID, n.ReconnectURL, n.PostURL} {
		dst = binary.AppendUvarint(dst, uint64(len(s)))
		dst = append(dst, s...)
	}
	for _, t := range [...]time.Time{n.OccurredAt, n.ReceivedAt} {
		dst = binary.AppendVarint(dst, t.Unix())
		dst = binary.AppendUvarint(dst, uint64(t.Nanosecond()))
	}
	dst = binary.AppendUvarint(dst, uint64(len(n.Origin.Topic)))
	dst = append(dst, n.Origin.Topic...)
	dst = binary.AppendVarint(dst, int64(n.Origin.Partition))
	return binary.AppendVarint(dst, n.Origin.Offset)
}

// readNotice decodes a notice. A value that does not start as one is errNotNotice; one
// that does but is cut short, has trailing bytes or a later version is errBadNotice.
func readNotice(b []byte) (notice, error) {
	if len(b) == 0 || b[0] != noticeMagic {
		return notice{}, errNotNotice
	}
	if len(b) < 2 || b[1] != noticeVersion {
		return notice{}, fmt.Errorf("%w: version %v, want %d", errBadNotice, b[1:min(2, len(b))], noticeVersion)
	}
	r := noticeReader{b: b, s: string(b), pos: 2}
	n := notice{Type: r.str(), ID: r.str(), Key: Key{Source: r.str(), Profile: r.str(), Platform: r.str()},
		Provider: r.str(), PostID: r.str(), ReconnectURL: r.str(), PostURL: r.str()}
	n.OccurredAt, n.ReceivedAt = r.time(), r.time()
	n.Origin = origin{Topic: r.str(), Partition: int32(r.varint()), Offset: r.varint()}
	if r.bad || r.pos != len(b) {
		return notice{}, fmt.Errorf("%w (%d bytes)", errBadNotice, len(b))
	}
	return n, nil
}

// noticeReader reads the fields of an encoded notice in order. Its strings are slices of
// one copy of the whole value: one allocation per notice, whatever its number of fields.
type noticeReader struct {
	b   []byte
	s   string // b, as a string
	pos int
	bad bool // cut short, or a length or time out of range
}

func (r *noticeReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b[r.pos:])
	if n <= 0 {
		r.bad, r.pos = true, len(r.b)
		return 0
	}
	r.pos += n
	return v
}

func (r *noticeReader) varint() int64 {
	v, n := binary.Varint(r.b[r.pos:])
	if n <= 0 {
		r.bad, r.pos = true, len(r.b)
		return 0
	}
	r.pos += n
	return v
}

func (r *noticeReader) str() string {
	n := r.uvarint()
	if n > uint64(len(r.b)-r.pos) {
		r.bad, r.pos = true, len(r.b)
		return ""
	}
	s := r.s[r.pos : r.pos+int(n)]
	r.pos += int(n)
	return s
}

func (r *noticeReader) time() time.Time {
	sec, ns := r.varint(), r.uvarint()
	if ns >= uint64(time.Second) {
		r.bad = true
		return time.Time{}
	}
	return time.Unix(sec, int64(ns)).UTC()
}
