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
	Topic     string
	Partition int32
	Offset    int64

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
