package store

import "time"

// Kind is what a record counts as.
type Kind uint8

// The kinds of record. Ignored records count nothing but still move their partition's
// offset: a value that can never be decoded must not stop the partition.
const (
	Ignored      Kind = iota
	Published         // post.published
	Failed            // post.failed
	TokenExpired      // post.token_expired
	Retry             // post.retry: the provider retries a post
)

// Record is one Kafka record as the aggregates see it.
type Record struct {
	Offset int64

	Kind       Kind
	OccurredAt time.Time // the hour it counts in
	Platform   string
	Profile    string
	// DelayMs is published_at − scheduled_at in milliseconds, for a Published record that
	// has both (HasDelay).
	DelayMs  int64
	HasDelay bool
}

// TP names a partition of a topic.
type TP struct {
	Topic     string
	Partition int32
}

// Run is records of one partition as a consumer read them, one after another.
type Run struct {
	TP
	// From is the offset the consumer read the partition from: every offset from From up to
	// the first record's was read and held nothing to count (a transaction marker or an
	// aborted record, read_committed; a record compacted away or past retention). For a
	// partition read from its start, 0.
	From    int64
	Records []Record // in offset order
}
