package producer_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/bridge/failure"
	"github.com/socialbridge/bridge/bridge/producer"
	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/internal/kafkatest"
	"github.com/socialbridge/bridge/internal/topics"
)

func kafkaConfig(t *testing.T) config.Kafka {
	cfg := config.Default()
	k := &cfg.Kafka
	k.Brokers = kafkatest.Brokers(t)
	k.TopicPrefix = kafkatest.Prefix(t)
	k.Partitions = 1
	k.ProduceTimeout = config.Duration(5 * time.Second)
	cfg.Sources = []config.Source{{Name: "a", Provider: "codivupload", Secrets: []string{"x"}}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg.Kafka
}

// TestProduceAndTopics: a record is produced once Kafka has it; one larger than the
// configured record limit is refused as too large, which retrying cannot help.
func TestProduceAndTopics(t *testing.T) {
	k := kafkaConfig(t)
	cl, err := kgo.NewClient(producer.Options(k)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ts := topics.Events(k.TopicPrefix)
	for range 2 { // the second time, they exist
		if err := topics.Ensure(t.Context(), cl, k, nil, ts...); err != nil {
			t.Fatal(err)
		}
	}

	p := producer.New(cl, k.ProduceTimeout.D())
	var settled []error
	rec := &kgo.Record{Topic: event.Topic(k.TopicPrefix, "post.published"), Key: []byte("k"), Value: []byte("v")}
	if err := p.Produce(rec, func(err error) { settled = append(settled, err) }); err != nil {
		t.Fatal(err)
	}
	if len(settled) != 1 || settled[0] != nil || rec.Offset != 0 {
		t.Fatalf("settled %v, offset %d", settled, rec.Offset)
	}

	big := &kgo.Record{Topic: rec.Topic, Value: bytes.Repeat([]byte("x"), k.MessageBytes())}
	err = p.Produce(big, func(error) {})
	if failure.KindOf(err) != failure.TooLarge {
		t.Fatalf("a record over Kafka's limit: %v (kind %v), want TooLarge", err, failure.KindOf(err))
	}
}

func TestDiscard(t *testing.T) {
	var d producer.Discard
	for want := int64(0); want < 3; want++ {
		rec := &kgo.Record{}
		called := false
		if err := d.Produce(rec, func(err error) { called = err == nil }); err != nil || !called || rec.Offset != want {
			t.Fatalf("offset %d, settled %v, err %v", rec.Offset, called, err)
		}
	}
}
