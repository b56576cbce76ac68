package redrive

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/consumers/retries"
	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/internal/kafkatest"
	"github.com/socialbridge/bridge/schemas"
)

// testPartitions is the partition count of the topics tests create.
const testPartitions = 2

// testConfig is a valid configuration on brokers with prefix, with a source of each preset
// the quarantine tests use.
func testConfig(t testing.TB, brokers []string, prefix string) config.Config {
	t.Helper()
	cfg, err := newConfig(brokers, prefix)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return cfg
}

func newConfig(brokers []string, prefix string) (config.Config, error) {
	cfg := config.Default()
	cfg.Kafka.Brokers, cfg.Kafka.TopicPrefix, cfg.Kafka.Partitions = brokers, prefix, testPartitions
	cfg.Sources = []config.Source{
		{Name: "codiv", Provider: "codivupload", Secrets: []string{"codiv-secret"}},
		{Name: "acme", Provider: "standard-webhooks", Secrets: []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}},
	}
	return cfg, cfg.Validate()
}

func discardLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

func client(t testing.TB, brokers []string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func createTopics(t testing.TB, brokers []string, topics ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := kadm.NewClient(client(t, brokers))
	resps, err := adm.CreateTopics(ctx, testPartitions, -1, nil, topics...)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range resps {
		if r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
			t.Fatalf("create %s: %v", r.Topic, r.Err)
		}
	}
}

// failedPost is a post.failed event with id and error code (none when code is "").
func failedPost(id, code string) *event.Event {
	ev := &event.Event{ID: id, Type: event.PostFailed, Source: "codiv", Provider: "codivupload",
		OccurredAt: time.Now().UTC().Truncate(time.Millisecond), ReceivedAt: time.Now().UTC().Truncate(time.Millisecond),
		Raw: []byte(`{"id":"` + id + `"}`)}
	post, platform := "post_"+id, "instagram"
	ev.PostID, ev.Platform = &post, &platform
	if code != "" {
		ev.ErrorCode = &code
	}
	return ev
}

// dlqRecord is a record of the dead-letter topic as the retries group writes it: ev, with
// the headers of a move after attempts calls.
func dlqRecord(t testing.TB, prefix string, partition int32, ev *event.Event, attempts int, originOffset int64) *kgo.Record {
	t.Helper()
	enc, _ := schemas.NewSingleObject()
	v, err := enc.Encode(nil, ev)
	if err != nil {
		t.Fatal(err)
	}
	return &kgo.Record{Topic: event.DLQTopic(prefix), Partition: partition, Key: []byte(ev.ID), Value: v, Headers: []kgo.RecordHeader{
		{Key: "event-type", Value: []byte(ev.Type)},
		{Key: retries.HeaderAttempt, Value: []byte(strconv.Itoa(attempts))},
		{Key: retries.HeaderError, Value: []byte("retries exhausted after 4 calls: action answered 503 Service Unavailable")},
		{Key: retries.HeaderOriginTopic, Value: []byte(event.Topic(prefix, event.PostFailed))},
		{Key: retries.HeaderOriginPartition, Value: []byte(strconv.Itoa(int(partition)))},
		{Key: retries.HeaderOriginOffset, Value: []byte(strconv.FormatInt(originOffset, 10))},
	}}
}

// produceTxn writes rs in one transaction of a producer of its own, committed or aborted.
func produceTxn(t testing.TB, brokers []string, commit bool, rs ...*kgo.Record) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	end := kafkatest.Abort
	if commit {
		end = kafkatest.Commit
	}
	kafkatest.ProduceInTransaction(ctx, t, brokers, end, rs...)
}

// readTopic returns the committed records of topic, read with franz-go's own read-committed
// fetching up to the end offsets it has now. Every transaction on it must be ended: the
// last offset of each partition is then a control record, which the read keeps, so it
// knows when it is done.
func readTopic(t testing.TB, brokers []string, topic string) []*kgo.Record {
	t.Helper()
	return kafkatest.ReadToEnd(t, brokers, topic, kgo.ReadCommitted())
}

// uncommitted counts the records of topic, committed or not (control records aside).
func uncommitted(t testing.TB, brokers []string, topic string) int {
	t.Helper()
	return len(kafkatest.ReadToEnd(t, brokers, topic, kgo.ReadUncommitted()))
}
