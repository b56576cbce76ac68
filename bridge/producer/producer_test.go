package producer_test

import (
	"bytes"
	"fmt"
	"sync"
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

// TestLingerIsABound: with a linger far longer than the produce timeout, no record waits for
// it. A record that finds nothing in flight goes at once, and records that find others in
// flight go when one of those is answered, so every Produce of many concurrent producers
// succeeds; a linger that delayed records would fail them all with a timeout.
func TestLingerIsABound(t *testing.T) {
	k := kafkaConfig(t)
	k.Partitions = 2
	k.Linger = config.Duration(time.Minute) // franz-go's most; the produce timeout is 5s
	cl, err := kgo.NewClient(producer.Options(k)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	topic := event.Topic(k.TopicPrefix, "post.published")
	if err := topics.Ensure(t.Context(), cl, k, nil, topics.Topic{Name: topic}); err != nil {
		t.Fatal(err)
	}
	p := producer.New(cl, k.ProduceTimeout.D())
	produce := func(key string) error {
		rec := &kgo.Record{Topic: topic, Key: []byte(key), Value: []byte("v")}
		return p.Produce(rec, func(error) {})
	}
	// franz-go learns a topic's partitions with its first record, which a flush cannot reach
	// before: that record waits the linger (documented). A flush running while it is placed
	// sends it at once.
	warm := make(chan error, 1)
	go func() { warm <- produce("warm-up") }()
	for waiting := true; waiting; {
		if err := cl.Flush(t.Context()); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-warm:
			if err != nil {
				t.Fatalf("warm-up: %v", err)
			}
			waiting = false
		default:
		}
	}
	for i := range 3 { // alone: nothing in flight
		if err := produce(fmt.Sprint("alone-", i)); err != nil {
			t.Fatalf("a record alone: %v", err)
		}
	}
	const workers, each = 64, 20
	errs := make(chan error, workers*each)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				errs <- produce(fmt.Sprintf("w%d-%d", w, i))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("a record among %d concurrent producers: %v", workers, err)
		}
	}
}
