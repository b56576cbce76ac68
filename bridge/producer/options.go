// Package producer sends the bridge's records to Kafka: the one place where configuration
// becomes franz-go options, the topic layout, and a produce call that never reports success
// for a record Kafka has not acknowledged.
package producer

import (
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/internal/kafkaconn"
)

// Options turns the Kafka configuration into client options. Idempotence requires acks=all,
// which is why acks is not configurable. The record delivery timeout equals the produce
// timeout, so a record Kafka never took is failed (safely, without breaking idempotent
// sequence numbers) about when its request is answered 503. The records waiting for Kafka
// are bounded in count and in bytes (each holds a whole body): past either bound a request
// is answered 503 at once, so a slow broker cannot grow the bridge's memory.
func Options(k config.Kafka) []kgo.Opt {
	return append(kafkaconn.Options(k),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(k.Linger.D()),
		kgo.RecordDeliveryTimeout(k.ProduceTimeout.D()),
		kgo.ProduceRequestTimeout(k.ProduceTimeout.D()),
		kgo.MaxBufferedRecords(maxBuffered),
		kgo.MaxBufferedBytes(k.MaxBufferedBytes),
		kgo.ProducerBatchCompression(codec(k.Compression)),
		kgo.RecordPartitioner(kgo.UniformBytesPartitioner(64<<10, true, false, nil)),
	)
}

// The partitioner fills one partition's batch before moving on, ignoring the key. The key is
// a unique event id, so hashing it would order nothing and only scatter each moment's
// records over every partition in batches of one, which costs the broker most of its CPU
// per record (the load benchmark measures it). Over time partitions still fill evenly.

func codec(name string) kgo.CompressionCodec {
	switch name {
	case "gzip":
		return kgo.GzipCompression()
	case "snappy":
		return kgo.SnappyCompression()
	case "lz4":
		return kgo.Lz4Compression()
	case "zstd":
		return kgo.ZstdCompression()
	}
	return kgo.NoCompression()
}

// maxBuffered bounds the count of records Kafka has not yet acknowledged, beside
// kafka.max_buffered_bytes.
const maxBuffered = 100_000

// DrainOptions are the options of the client that drains the local spool (bridge/spool): the
// producer's, without a record delivery timeout. A spooled record keeps the timestamp of its
// delivery's arrival, which franz-go measures the delivery timeout from (it would fail every
// record older than the timeout before sending it), and nobody waits for its answer: it stays
// buffered until Kafka takes it or the client is closed.
func DrainOptions(k config.Kafka) []kgo.Opt {
	return append(Options(k), kgo.RecordDeliveryTimeout(0))
}
