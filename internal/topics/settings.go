package topics

import (
	"cmp"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/socialbridge/bridge/config"
)

// settings are what the topics are created with and checked against: the configuration's,
// with the replication brought down to the cluster's count of brokers when it has fewer.
type settings struct {
	partitions  int32
	replication int16 // -1: the broker's default.replication.factor, not checked
	minISR      int   // 0: the broker's default, not checked
	maxMessage  int   // 0: the broker's default, not checked
	retention   time.Duration
}

// settingsFor returns the settings of k on a cluster of brokers. A cluster smaller than
// kafka.replication_factor gets topics of as many replicas as it has brokers, with a
// warning, or none with kafka.require_durable.
func settingsFor(k config.Kafka, brokers int, log *slog.Logger) (settings, error) {
	s := settings{partitions: k.Partitions, replication: k.ReplicationFactor, maxMessage: k.MessageBytes(), retention: k.Retention.D()}
	if s.replication > 0 && brokers > 0 && int(s.replication) > brokers {
		if k.RequireDurable {
			return s, fmt.Errorf("kafka.require_durable: the cluster has %s, fewer than kafka.replication_factor (%d)", count(brokers, "broker"), s.replication)
		}
		s.replication = int16(brokers)
		log.Warn("the cluster has fewer brokers than kafka.replication_factor: topics are created with one replica per broker, and a record Kafka acknowledged is on fewer brokers than configured (set kafka.require_durable to refuse to start instead)",
			"brokers", brokers, "replication_factor", k.ReplicationFactor, "min_insync_replicas", k.MinISR(s.replication))
	}
	s.minISR = k.MinISR(s.replication)
	return s, nil
}

// compactedSegmentMS is how long a compacted topic writes a segment before compaction may
// clean it, and how long a tombstone outlives its cleaning: an hour.
const compactedSegmentMS = 3600000

// request returns the creation of t.
func (s settings) request(t Topic) kmsg.CreateTopicsRequestTopic {
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic = t.Name
	rt.NumPartitions = cmp.Or(t.Partitions, s.partitions)
	rt.ReplicationFactor = s.replication
	config := func(name, value string) {
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name, c.Value = name, kmsg.StringPtr(value)
		rt.Configs = append(rt.Configs, c)
	}
	switch {
	case t.Compact:
		// A compacted topic is state read whole by its owner (alerts, poll cursors, redrive
		// markers). Compaction never cleans the segment being written and keeps a tombstone
		// for delete.retention.ms: an hour of each, not Kafka's week and day, so that what a
		// load reads stays near the keys alive.
		config("cleanup.policy", "compact")
		config("segment.ms", strconv.Itoa(compactedSegmentMS))
		config("delete.retention.ms", strconv.Itoa(compactedSegmentMS))
	case s.retention > 0:
		config("retention.ms", strconv.FormatInt(s.retention.Milliseconds(), 10))
	}
	if s.minISR > 0 {
		config("min.insync.replicas", strconv.Itoa(s.minISR))
	}
	if s.maxMessage > 0 {
		config("max.message.bytes", strconv.Itoa(s.maxMessage))
	}
	return rt
}
