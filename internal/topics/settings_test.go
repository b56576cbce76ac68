package topics_test

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/internal/kafkatest"
	"github.com/socialbridge/bridge/internal/testkit"
	"github.com/socialbridge/bridge/internal/topics"
)

// validated is the default kafka section on brokers, as a loaded file has it.
func validated(t *testing.T, brokers []string) config.Kafka {
	t.Helper()
	cfg := config.Default()
	cfg.Kafka.Brokers = brokers
	cfg.Kafka.Partitions = 2
	cfg.Sources = []config.Source{{Name: "a", Provider: "codivupload", Secrets: []string{"x"}}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg.Kafka
}

func newClient(t *testing.T, brokers []string) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func logTo(buf *testkit.LogBuffer) *slog.Logger { return slog.New(slog.NewTextHandler(buf, nil)) }

// TestCreatedSettings: on a cluster of one broker, topics are created with one replica,
// min.insync.replicas 1 and the record limit as max.message.bytes, with a warning that the
// cluster is smaller than kafka.replication_factor; kafka.require_durable refuses instead,
// creating nothing.
func TestCreatedSettings(t *testing.T) {
	brokers, prefix := kafkatest.Brokers(t), kafkatest.Prefix(t)
	cl := newClient(t, brokers)
	k := validated(t, brokers)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	k.RequireDurable = true
	err := topics.Ensure(ctx, cl, k, nil, topics.Topic{Name: prefix + "refused"})
	if err == nil || !strings.Contains(err.Error(), "kafka.require_durable: the cluster has 1 broker, fewer than kafka.replication_factor (3)") {
		t.Fatalf("require_durable on one broker: %v", err)
	}
	if missing, err := topics.Missing(ctx, cl, prefix+"refused"); err != nil || len(missing) != 1 {
		t.Fatalf("the refused topic was created: missing %v, %v", missing, err)
	}

	k.RequireDurable = false
	var logs testkit.LogBuffer
	if err := topics.Ensure(ctx, cl, k, logTo(&logs), topics.Topic{Name: prefix + "plain"}, topics.Topic{Name: prefix + "state", Compact: true}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "fewer brokers than kafka.replication_factor") {
		t.Errorf("no warning of the small cluster:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), "topic below the configured settings") {
		t.Errorf("the topics just created are said to be below their settings:\n%s", logs.String())
	}
	max := strconv.Itoa(k.MessageBytes())
	want := map[string]map[string]string{
		"plain": {"min.insync.replicas": "1", "max.message.bytes": max, "cleanup.policy": "delete", "retention.ms": "604800000"},
		"state": {"min.insync.replicas": "1", "max.message.bytes": max, "cleanup.policy": "compact"},
	}
	for name, configs := range want {
		got := describe(t, kadm.NewClient(cl), prefix+name)
		for key, v := range configs {
			if got[key] != v {
				t.Errorf("%s: %s %q, want %q", name, key, got[key], v)
			}
		}
	}
}

func describe(t *testing.T, adm *kadm.Client, topic string) map[string]string {
	t.Helper()
	rcs, err := adm.DescribeTopicConfigs(t.Context(), topic)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On(topic, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, c := range rc.Configs {
		got[c.Key] = c.MaybeValue()
	}
	return got
}

// TestCheckBelow: on a cluster of three brokers, topics that exist with one replica,
// min.insync.replicas 1 and a small max.message.bytes are each a warning naming what they
// lack, or with kafka.require_durable a refusal naming them all; a topic as configured is
// neither.
func TestCheckBelow(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(3))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	brokers := c.ListenAddrs()
	cl := newClient(t, brokers)
	k := validated(t, brokers)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	small := "1048588"
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, map[string]*string{"max.message.bytes": &small}, "thin"); err != nil {
		t.Fatal(err)
	}
	if err := topics.Ensure(ctx, cl, k, nil, topics.Topic{Name: "thick"}); err != nil {
		t.Fatal(err)
	}
	lack := "1 replica, want 3 (kafka.replication_factor); min.insync.replicas 1, want at least 2 (kafka.min_insync_replicas); max.message.bytes 1048588, want at least " + strconv.Itoa(k.MessageBytes())

	var logs testkit.LogBuffer
	if err := topics.Check(ctx, cl, k, logTo(&logs), topics.Plain("thin", "thick", "absent")...); err != nil {
		t.Fatal(err)
	}
	if got := logs.String(); !strings.Contains(got, `topic=thin problems="`+lack) || strings.Contains(got, "topic=thick") || strings.Contains(got, "absent") {
		t.Errorf("want one warning, of thin: %s\n%s", lack, got)
	}

	k.RequireDurable = true
	err = topics.Ensure(ctx, cl, k, nil, topics.Plain("thin", "thick")...)
	if err == nil || !strings.Contains(err.Error(), "kafka.require_durable: topics below the configured settings") || !strings.Contains(err.Error(), "thin: "+lack) || strings.Contains(err.Error(), "thick") {
		t.Fatalf("require_durable: %v; want a refusal naming thin only", err)
	}
}
