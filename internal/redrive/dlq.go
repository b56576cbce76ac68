package redrive

import (
	"context"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/consumers"
	"github.com/socialbridge/bridge/consumers/retries"
	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/schemas"
)

// Headers a redrive adds to the record it moves to the first retry topic, besides
// retries.HeaderDueAt (now: due at once): where in the dead-letter topic it came from.
const (
	HeaderRedrivenFromOffset    = "retry-redriven-from-offset"
	HeaderRedrivenFromPartition = "retry-redriven-from-partition"
)

// RedrivenTopic is the compacted topic of the marks of the dead-letter records that were
// redriven, {prefix}post.failed.dlq.redriven; RedriveTxnID is the transactional id every
// redrive of the prefix's dead-letter topic takes, so that two never commit at once.
func RedrivenTopic(prefix string) string { return event.DLQTopic(prefix) + ".redriven" }

// RedriveTxnID: see RedrivenTopic.
func RedriveTxnID(prefix string) string { return event.DLQTopic(prefix) + ".redrive" }

// Entry is one record of the dead-letter topic as `bridge dlq list --json` prints it. The
// first eight fields are the contract's (PRODUCT.md); Error is the failed post's error
// code, null when it has none or the value cannot be decoded; Attempts and the origin are
// null when the record lacks the header.
type Entry struct {
	EventID        string    `json:"event_id"`
	Error          *string   `json:"error"`
	Attempts       *int      `json:"attempts"`
	OriginTopic    string    `json:"origin_topic"`
	OriginOffset   *int64    `json:"origin_offset"`
	DLQOffset      int64     `json:"dlq_offset"`
	DeadLetteredAt time.Time `json:"dead_lettered_at"`
	Redriven       bool      `json:"redriven"`
	// Besides the contract's: the dead-letter partition, the origin's partition, why the
	// group dead-lettered it (its retry-error header), and the dead-letter offset it was
	// redriven from when it is back after a redrive.
	DLQPartition       int32  `json:"dlq_partition"`
	OriginPartition    *int32 `json:"origin_partition"`
	Reason             string `json:"reason"`
	RedrivenFromOffset *int64 `json:"redriven_from_offset,omitempty"`

	record *kgo.Record
}

// DLQ reads the retries group's dead-letter topic and redrives its records.
type DLQ struct {
	k      config.Kafka
	prefix string
	dec    *schemas.Reader
	log    *slog.Logger
	now    func() time.Time
	batch  int // records per transaction
}

// defaultBatch is how many records a redrive moves in one transaction: few enough to be
// produced well within txnTimeout.
const defaultBatch = 500

// NewDLQ returns the dead-letter topic of cfg's retries group. It reads cfg's kafka and
// schema_registry sections.
func NewDLQ(cfg config.Config, log *slog.Logger) (*DLQ, error) {
	dec, err := consumers.NewReader(cfg.SchemaRegistry)
	if err != nil {
		return nil, err
	}
	return &DLQ{k: cfg.Kafka, prefix: cfg.Kafka.TopicPrefix, dec: dec, log: log, now: time.Now, batch: defaultBatch}, nil
}

// Topic is the dead-letter topic's name.
func (d *DLQ) Topic() string { return event.DLQTopic(d.prefix) }

// List returns the committed records of the dead-letter topic that f matches, by partition
// and offset, each with whether it was redriven.
func (d *DLQ) List(ctx context.Context, f Filter) ([]Entry, error) {
	c, err := dial(d.k)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	es, _, err := d.read(ctx, c, nil)
	if err != nil {
		return nil, err
	}
	now := d.now()
	return slices.DeleteFunc(es, func(e Entry) bool { return !f.match(&e, now) }), nil
}

// read returns every committed record of the dead-letter topic, marked redriven or not, and
// the topic's id; none when the topic does not exist. An entry keeps its record (its value,
// for a move) only when hold says so: the others' values are let go as the topic is read.
func (d *DLQ) read(ctx context.Context, c *cluster, hold func(*Entry) bool) ([]Entry, kadm.TopicID, error) {
	var es []Entry
	id, err := readMarked(ctx, c, d.Topic(), RedrivenTopic(d.prefix), RedriveTxnID(d.prefix), func(r *kgo.Record, marked bool) {
		e := d.entry(r)
		e.Redriven = marked
		if hold == nil || !hold(&e) {
			e.record = nil
		}
		es = append(es, e)
	})
	if err != nil {
		return nil, id, err
	}
	sortByPlace(es, func(e Entry) mark { return mark{e.DLQPartition, e.DLQOffset} })
	return es, id, nil
}

// entry reads a dead-letter record's headers, and its value for the error code.
func (d *DLQ) entry(r *kgo.Record) Entry {
	e := Entry{
		EventID: string(r.Key), DLQPartition: r.Partition, DLQOffset: r.Offset,
		DeadLetteredAt: r.Timestamp.UTC(), record: r,
	}
	e.OriginTopic, _ = consumers.Header(r, retries.HeaderOriginTopic)
	e.Reason, _ = consumers.Header(r, retries.HeaderError)
	if n, ok := intHeader(r, retries.HeaderAttempt); ok {
		e.Attempts = ptr(int(n))
	}
	if n, ok := intHeader(r, retries.HeaderOriginOffset); ok {
		e.OriginOffset = &n
	}
	if n, ok := intHeader(r, retries.HeaderOriginPartition); ok {
		e.OriginPartition = ptr(int32(n))
	}
	if n, ok := intHeader(r, HeaderRedrivenFromOffset); ok {
		e.RedrivenFromOffset = &n
	}
	var ev event.Event
	if err := d.dec.DecodeWithoutRaw(r.Value, &ev); err == nil && ev.ErrorCode != nil {
		e.Error = ev.ErrorCode
	}
	if e.EventID == "" {
		e.EventID = ev.ID
	}
	return e
}

func intHeader(r *kgo.Record, key string) (int64, bool) {
	v, ok := consumers.Header(r, key)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	return n, err == nil
}

func ptr[T any](v T) *T { return &v }
