package topics_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/internal/kafkatest"
	"github.com/socialbridge/bridge/internal/topics"
)

// TestEnsure: the missing topics are created (compacted ones compacted, the others
// with the retention), the existing ones left as they are, and without create_topics the
// missing ones are named.
func TestEnsure(t *testing.T) {
	brokers, prefix := kafkatest.Brokers(t), kafkatest.Prefix(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := adm.CreateTopic(ctx, 1, -1, nil, prefix+"existing"); err != nil {
		t.Fatal(err)
	}
	k := config.Kafka{CreateTopics: true, Partitions: 2, ReplicationFactor: -1, Retention: config.Duration(time.Hour)}
	ts := []topics.Topic{{Name: prefix + "existing"}, {Name: prefix + "plain"}, {Name: prefix + "state", Compact: true}, {Name: prefix + "one", Partitions: 1}}
	if err := topics.Ensure(ctx, cl, k, nil, ts...); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]int{"existing": 1, "plain": 2, "state": 2, "one": 1} {
		if n, err := topics.Partitions(ctx, cl, prefix+name); err != nil || n != want {
			t.Errorf("%s: %d partitions (%v), want %d", name, n, err, want)
		}
	}
	configs, err := adm.DescribeTopicConfigs(ctx, prefix+"plain", prefix+"state")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range configs {
		got := map[string]string{}
		for _, v := range c.Configs {
			got[v.Key] = v.MaybeValue()
		}
		if c.Name == prefix+"state" && got["cleanup.policy"] != "compact" {
			t.Errorf("state: cleanup.policy %q, want compact", got["cleanup.policy"])
		}
		if c.Name == prefix+"plain" && (got["cleanup.policy"] != "delete" || got["retention.ms"] != "3600000") {
			t.Errorf("plain: cleanup.policy %q, retention.ms %q; want delete, 3600000", got["cleanup.policy"], got["retention.ms"])
		}
	}

	k.CreateTopics = false
	err = topics.Ensure(ctx, cl, k, nil, topics.Topic{Name: prefix + "plain"}, topics.Topic{Name: prefix + "absent", Compact: true, Partitions: 1})
	if err == nil || !strings.Contains(err.Error(), prefix+"absent (1 partition, compacted)") || strings.Contains(err.Error(), prefix+"plain") {
		t.Errorf("without create_topics: %v, want an error naming only %sabsent and its shape", err, prefix)
	}
}

// TestEnsureAsksTheBroker: a client that cached a topic as missing (kadm answers from
// the cache for the metadata min age, an hour here) still sees it once it is created.
func TestEnsureAsksTheBroker(t *testing.T) {
	brokers, prefix := kafkatest.Brokers(t), kafkatest.Prefix(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.MetadataMinAge(time.Hour), kgo.MetadataMaxAge(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	topic := topics.Topic{Name: prefix + "late"}
	if details, err := kadm.NewClient(cl).ListTopics(ctx, topic.Name); err != nil || details[topic.Name].Err == nil {
		t.Fatalf("before: %v, %+v; want the topic missing", err, details)
	}
	k := config.Kafka{CreateTopics: true, Partitions: 1, ReplicationFactor: -1}
	if err := topics.Ensure(ctx, cl, k, nil, topic); err != nil {
		t.Fatal(err)
	}
	if missing, err := topics.Missing(ctx, cl, topic.Name); err != nil || len(missing) > 0 {
		t.Fatalf("Missing after the creation: %v, %v", missing, err)
	}
}
