package analytics

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/consumers/analytics/store"
	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/internal/kafkatest"
	"github.com/socialbridge/bridge/internal/topics"
	"github.com/socialbridge/bridge/schemas"
)

// testPartitions is the partitions of each test topic: 4 topics, 12 partitions in all.
const testPartitions = 3

// testKafka is a topic prefix of the test's own on the test broker, with the bridge's topics.
type testKafka struct {
	brokers []string
	prefix  string
	client  *kgo.Client
}

func newTestKafka(t *testing.T) *testKafka {
	t.Helper()
	k := &testKafka{brokers: kafkatest.Brokers(t), prefix: kafkatest.Prefix(t)}
	var err error
	k.client, err = kgo.NewClient(kgo.SeedBrokers(k.brokers...), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.client.Close)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := config.Kafka{TopicPrefix: k.prefix, CreateTopics: true, Partitions: testPartitions, ReplicationFactor: -1}
	if err := topics.Ensure(ctx, k.client, cfg, nil, topics.Events(k.prefix)...); err != nil {
		t.Fatal(err)
	}
	return k
}

// config returns a configuration of the analytics consumer on this prefix and database.
func (k *testKafka) config(database string) config.Config {
	cfg := config.Default()
	cfg.Kafka.Brokers = k.brokers
	cfg.Kafka.TopicPrefix = k.prefix
	cfg.Consumers.Analytics.Group = k.prefix + "analytics"
	cfg.Consumers.Analytics.Database = database
	cfg.Consumers.Analytics.Listen = "127.0.0.1:0"
	return cfg
}

// placed is where an event was produced.
type placed struct {
	tp     store.TP
	offset int64
	ev     *event.Event
}

// produce writes events, single-object encoded, each to the topic of its type, plus garbage
// (values that can never be decoded) into the post.published topic, and says where each
// event went.
func (k *testKafka) produce(t *testing.T, events []event.Event, garbage int) []placed {
	t.Helper()
	enc, err := schemas.NewSingleObject()
	if err != nil {
		t.Fatal(err)
	}
	recs := make([]*kgo.Record, 0, len(events)+garbage)
	for i := range events {
		v, err := enc.Encode(nil, &events[i])
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, &kgo.Record{Topic: event.Topic(k.prefix, events[i].Type), Key: []byte(events[i].ID), Value: v})
	}
	for range garbage {
		recs = append(recs, &kgo.Record{Topic: event.Topic(k.prefix, event.PostPublished), Value: []byte("not avro")})
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := k.client.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	out := make([]placed, len(events))
	for i := range events {
		out[i] = placed{store.TP{Topic: recs[i].Topic, Partition: recs[i].Partition}, recs[i].Offset, &events[i]}
	}
	return out
}

// ends returns the end offset of every partition of the counted topics.
func (k *testKafka) ends(t *testing.T) map[store.TP]int64 {
	t.Helper()
	topics := make([]string, len(Types))
	for i, typ := range Types {
		topics[i] = event.Topic(k.prefix, typ)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	offs, err := kadm.NewClient(k.client).ListEndOffsets(ctx, topics...)
	if err != nil {
		t.Fatal(err)
	}
	out := map[store.TP]int64{}
	offs.Each(func(o kadm.ListedOffset) { out[store.TP{Topic: o.Topic, Partition: o.Partition}] = o.Offset })
	return out
}

// waitCounted waits until the database's offsets reach ends: every record is counted.
func waitCounted(t *testing.T, s *store.Store, ends map[store.TP]int64) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		offs, err := s.Offsets(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		done := true
		for tp, end := range ends {
			if end > 0 && offs[tp] < end {
				done = false
			}
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("records not all counted after 3 minutes: offsets %v, ends %v", offs, ends)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func openStore(t *testing.T, database string) *store.Store {
	t.Helper()
	s, err := store.Open(t.Context(), database)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
