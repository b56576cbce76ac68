package poll_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/bridge/poll"
	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/internal/kafkatest"
	"github.com/socialbridge/bridge/internal/topics"
)

// TestKafkaCursors keeps cursors in the state topic of a real broker: created compacted with
// one partition, each source's latest cursor read back, nothing for a topic not there.
func TestKafkaCursors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(kafkatest.Brokers(t)...), kgo.RecordDeliveryTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	prefix := kafkatest.Prefix(t)
	cursors := poll.NewKafkaCursors(cl, prefix)
	if got, err := cursors.Load(ctx); err != nil || len(got) != 0 {
		t.Fatalf("Load of a missing topic = %v, %v; want no cursors", got, err)
	}
	k := config.Kafka{CreateTopics: true, Partitions: 6, ReplicationFactor: -1}
	for range 2 {
		if err := topics.Ensure(ctx, cl, k, nil, poll.Topic(prefix)); err != nil {
			t.Fatalf("Ensure: %v", err)
		}
	}
	checkStateTopic(ctx, t, kadm.NewClient(cl), prefix+poll.StateTopic)
	saves := []struct {
		source string
		seen   []string
	}{{"pb", []string{"r1"}}, {"other", []string{"x9"}}, {"pb", []string{"r3", "r2", "r1"}}}
	for _, s := range saves {
		if err := cursors.Save(ctx, s.source, poll.Cursor{Started: true, Seen: s.seen}); err != nil {
			t.Fatalf("Save: %v", err)
		}
	}
	got, err := poll.NewKafkaCursors(cl, prefix).Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !slices.Equal(got["pb"].Seen, []string{"r3", "r2", "r1"}) || !got["pb"].Started || !slices.Equal(got["other"].Seen, []string{"x9"}) {
		t.Fatalf("Load = %+v, want each source's latest cursor", got)
	}
}

func checkStateTopic(ctx context.Context, t *testing.T, adm *kadm.Client, topic string) {
	t.Helper()
	details, err := adm.ListTopics(ctx, topic)
	if err != nil || len(details[topic].Partitions) != 1 {
		t.Fatalf("%s: %v partitions, %v; want 1", topic, len(details[topic].Partitions), err)
	}
	configs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := configs.On(topic, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range rc.Configs {
		if c.Key == "cleanup.policy" && (c.Value == nil || *c.Value != "compact") {
			t.Fatalf("%s: cleanup.policy %v, want compact", topic, c.Value)
		}
	}
}
