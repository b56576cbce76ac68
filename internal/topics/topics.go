// Package topics makes and checks the project's topics: the bridge's event and quarantine
// topics, the consumers' retry, dead-letter and state topics, and the poll cursors' topic.
// Their settings (partitions, replication, min.insync.replicas, max.message.bytes,
// retention, compaction) are decided here and nowhere else, and Kafka is asked about them
// one way: a request to a broker, never a client's cache of metadata, where a topic seen
// missing stays missing for the cache's minimum age and a broker that is gone still looks
// present.
package topics

import (
	"cmp"
	"fmt"

	"github.com/socialbridge/bridge/event"
)

// Topic is a topic the project reads or writes.
type Topic struct {
	Name string
	// Compact makes it a compacted topic (cleanup.policy=compact, kept forever): the state a
	// reader rebuilds by reading it whole. Otherwise kafka.retention applies.
	Compact bool
	// Partitions, when not 0, replaces kafka.partitions: the poll cursors' topic has one, so
	// that a source's cursors stay in order.
	Partitions int32
}

// Plain returns topics of names with the configured partitions and retention.
func Plain(names ...string) []Topic {
	ts := make([]Topic, len(names))
	for i, n := range names {
		ts[i] = Topic{Name: n}
	}
	return ts
}

// Events returns the topics the bridge writes: one per event type, and the quarantine.
func Events(prefix string) []Topic { return Plain(event.Topics(prefix)...) }

// shape says what t must look like, for an operator who creates it: "x (1 partition, compacted)".
func (t Topic) shape(partitions int32) string {
	n := cmp.Or(t.Partitions, partitions)
	s := fmt.Sprintf("%s (%d partitions", t.Name, n)
	if n == 1 {
		s = fmt.Sprintf("%s (1 partition", t.Name)
	}
	if t.Compact {
		s += ", compacted"
	}
	return s + ")"
}

func names(ts []Topic) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.Name
	}
	return out
}
