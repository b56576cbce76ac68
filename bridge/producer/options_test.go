package producer_test

import (
	"testing"

	"github.com/socialbridge/bridge/bridge/producer"
	"github.com/socialbridge/bridge/config"
)

// TestOptionsRefuseUnknownCompression: a compression name config.Validate would refuse never
// becomes a producer without compression; Options is only for a validated configuration, and
// one that was not is a bug that must show.
func TestOptionsRefuseUnknownCompression(t *testing.T) {
	k := config.Default().Kafka
	k.Brokers = []string{"127.0.0.1:1"}
	k.Compression = "brotli"
	defer func() {
		if recover() == nil {
			t.Error("Options accepted kafka.compression \"brotli\"; want a panic, not a silent fallback to none")
		}
	}()
	producer.Options(k)
}
