package producer_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/bridge/failure"
	"github.com/socialbridge/bridge/bridge/producer"
	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/internal/kafkatest"
)

func kafkaConfig(t *testing.T) config.Kafka {
	k := config.Default().Kafka
	k.Brokers = kafkatest.Brokers(t)
	k.TopicPrefix = kafkatest.Prefix(t)
	k.Partitions = 1
	k.ProduceTimeout = config.Duration(5 * time.Second)
	return k
}

func TestProduceAndTopics(t *testing.T) {
	k := kafkaConfig(t)
	cl, err := kgo.NewClient(producer.Options(k)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if err := producer.CreateTopics(t.Context(), adm, k); err != nil {
		t.Fatal(err)
	}
	if err := producer.CreateTopics(t.Context(), adm, k); err != nil {
		t.Fatalf("creating existing topics again: %v", err)
	}
	if missing, err := producer.MissingTopics(t.Context(), adm, k.TopicPrefix); err != nil || len(missing) > 0 {
		t.Fatalf("missing %v, %v", missing, err)
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

	big := &kgo.Record{Topic: rec.Topic, Value: bytes.Repeat([]byte("x"), 2<<20)}
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
