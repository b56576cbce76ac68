package kafkatest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// CreateTopic creates topic with partitions (replication: the broker's default) and waits
// until the cluster's metadata shows every partition with a leader, so that the test's first
// produce cannot meet UNKNOWN_TOPIC_OR_PARTITION on a busy broker. An existing topic is fine.
// The topic is deleted when the test ends.
func CreateTopic(t testing.TB, adm *kadm.Client, topic string, partitions int32) {
	t.Helper()
	CreateTopicWith(t, adm, topic, partitions, nil)
}

// CreateTopicWith is CreateTopic with topic configs (e.g. max.message.bytes).
func CreateTopicWith(t testing.TB, adm *kadm.Client, topic string, partitions int32, configs map[string]*string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	resp, err := adm.CreateTopic(ctx, partitions, -1, configs, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		t.Fatalf("kafkatest: create topic %s: %v", topic, err)
	}
	t.Cleanup(func() { _, _ = adm.DeleteTopic(context.Background(), topic) })
	for !led(ctx, adm, topic, partitions) {
		select {
		case <-ctx.Done():
			t.Fatalf("kafkatest: topic %s has no leader for all %d partitions after 60s", topic, partitions)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func led(ctx context.Context, adm *kadm.Client, topic string, partitions int32) bool {
	details, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return false
	}
	d, ok := details[topic]
	if !ok || d.Err != nil || len(d.Partitions) != int(partitions) {
		return false
	}
	for _, p := range d.Partitions {
		if p.Err != nil || p.Leader < 0 {
			return false
		}
	}
	return true
}
