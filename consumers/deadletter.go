package consumers

import (
	"strconv"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Headers of a record a group dead-letters without having handled it (it could not be
// decoded), after Kafka Connect's errors.* headers: why, and where it was read.
const (
	HeaderDLQError           = "dlq-error"
	HeaderDLQOriginTopic     = "dlq-origin-topic"
	HeaderDLQOriginPartition = "dlq-origin-partition"
	HeaderDLQOriginOffset    = "dlq-origin-offset"
)

// DeadLetter returns the record that carries r, as read, to topic: the same key, value and
// headers, plus why it is there and where it came from.
func DeadLetter(r *kgo.Record, topic, reason string) *kgo.Record {
	return Forward(r, topic,
		kgo.RecordHeader{Key: HeaderDLQError, Value: []byte(reason)},
		kgo.RecordHeader{Key: HeaderDLQOriginTopic, Value: []byte(r.Topic)},
		kgo.RecordHeader{Key: HeaderDLQOriginPartition, Value: []byte(strconv.Itoa(int(r.Partition)))},
		kgo.RecordHeader{Key: HeaderDLQOriginOffset, Value: []byte(strconv.FormatInt(r.Offset, 10))},
	)
}

// Forward returns a copy of r for topic with its key and value, its headers except those
// named in set, and the headers in set (which replace any of the same name). Its timestamp
// is left for the producer to set: the time of the move.
func Forward(r *kgo.Record, topic string, set ...kgo.RecordHeader) *kgo.Record {
	headers := make([]kgo.RecordHeader, 0, len(r.Headers)+len(set))
	for _, h := range r.Headers {
		if !named(set, h.Key) {
			headers = append(headers, h)
		}
	}
	return &kgo.Record{Topic: topic, Key: r.Key, Value: r.Value, Headers: append(headers, set...)}
}

func named(hs []kgo.RecordHeader, key string) bool {
	for _, h := range hs {
		if h.Key == key {
			return true
		}
	}
	return false
}

// Header returns the value of r's last header named key, and whether there is one.
func Header(r *kgo.Record, key string) (string, bool) {
	for i := len(r.Headers) - 1; i >= 0; i-- {
		if r.Headers[i].Key == key {
			return string(r.Headers[i].Value), true
		}
	}
	return "", false
}
