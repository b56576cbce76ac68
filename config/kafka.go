package config

import (
	"fmt"
	"net"
	"time"
)

// Kafka configures the connection to the cluster, the producer and the topics.
type Kafka struct {
	Brokers           []string `yaml:"brokers"`
	ClientID          string   `yaml:"client_id"`
	TopicPrefix       string   `yaml:"topic_prefix"`
	ProduceTimeout    Duration `yaml:"produce_timeout"`
	Linger            Duration `yaml:"linger"`
	Compression       string   `yaml:"compression"`
	CreateTopics      bool     `yaml:"create_topics"`
	Partitions        int32    `yaml:"partitions"`
	ReplicationFactor int16    `yaml:"replication_factor"`
	Retention         Duration `yaml:"retention"`
	MaxBufferedBytes  int      `yaml:"max_buffered_bytes"`
}

func defaultKafka() Kafka {
	return Kafka{
		ClientID:          "social-webhook-bridge",
		TopicPrefix:       "social.",
		ProduceTimeout:    Duration(5 * time.Second),
		Compression:       "lz4",
		CreateTopics:      true,
		Partitions:        6,
		ReplicationFactor: -1,
		Retention:         Duration(7 * 24 * time.Hour),
		MaxBufferedBytes:  64 << 20,
	}
}

func (c *Config) validateKafka(bad complaint) {
	if len(c.Kafka.Brokers) == 0 {
		bad("kafka.brokers", "no brokers: name at least one host:port")
	}
	for i, b := range c.Kafka.Brokers {
		if _, _, err := net.SplitHostPort(b); err != nil {
			bad(fmt.Sprintf("kafka.brokers[%d]", i), "want host:port, got %q", b)
		}
	}
	positive(bad, "kafka.produce_timeout", c.Kafka.ProduceTimeout)
	if c.Kafka.Linger < 0 {
		bad("kafka.linger", "must not be negative")
	}
	switch c.Kafka.Compression {
	case "none", "gzip", "snappy", "lz4", "zstd":
	default:
		bad("kafka.compression", "want none, gzip, snappy, lz4 or zstd; got %q", c.Kafka.Compression)
	}
	if c.Kafka.Partitions <= 0 {
		bad("kafka.partitions", "must be positive, got %d", c.Kafka.Partitions)
	}
	if c.Kafka.ReplicationFactor == 0 || c.Kafka.ReplicationFactor < -1 {
		bad("kafka.replication_factor", "must be positive, or -1 for the broker default; got %d", c.Kafka.ReplicationFactor)
	}
	if c.Kafka.Retention < 0 {
		bad("kafka.retention", "must not be negative (0 keeps the broker default)")
	}
	if min := 2 * c.HTTP.MaxBodyBytes; c.Kafka.MaxBufferedBytes < min {
		bad("kafka.max_buffered_bytes", "must be at least twice http.max_body_bytes (%d), got %d", min, c.Kafka.MaxBufferedBytes)
	}
}
