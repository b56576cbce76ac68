package service_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/socialbridge/bridge/bridge/service"
	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/internal/kafkatest"
)

// TestDurableOnThreeBrokers: on a cluster of three brokers whose defaults are Kafka's own
// (default.replication.factor and min.insync.replicas 1), the bridge creates its topics
// with three replicas and min.insync.replicas 2, and refuses to start with
// kafka.require_durable on topics that exist with less (warning without). The topics
// survive one broker: with one down deliveries are still answered 200 and are in their
// topics; with two down no delivery is answered 200, since no record would then be on two
// brokers.
func TestDurableOnThreeBrokers(t *testing.T) {
	c := kafkatest.StartCluster(t, 3)
	brokers := c.Addrs()
	adm := admin(t, brokers)
	refusesThin(t, adm, brokers)

	cfg := testConfig(t, brokers)
	b := start(t, cfg)
	topics := event.Topics(cfg.Kafka.TopicPrefix)
	for _, topic := range topics {
		want := topicSettings{replicas: 3, minISR: "2", maxMessage: strconv.Itoa(cfg.Kafka.MessageBytes())}
		if got := settingsOf(t, adm, topic); got != want {
			t.Errorf("%s: %+v; want %+v", topic, got, want)
		}
	}

	n := 0
	deliver := func() (answer, string) {
		n++
		id := fmt.Sprintf("evt_durable_%d", n)
		h, body := codiv(event.PostPublished, id)
		a, err := exchange(httpClient, "POST", b.url+"/webhooks/codivupload", h, body)
		if err != nil {
			t.Fatal(err)
		}
		return a, id
	}
	// accepted sends a delivery again while it is answered 503, as its sender would (Kafka may
	// take longer than kafka.produce_timeout to acknowledge on a busy machine), until it is
	// answered 200, and returns its id.
	accepted := func(when string) string {
		a, id := deliver()
		h, body := codiv(event.PostPublished, id)
		deadline := time.Now().Add(2 * time.Minute)
		for a.Code == 503 && time.Now().Before(deadline) {
			a = send(t, httpClient, "POST", b.url+"/webhooks/codivupload", h, body)
		}
		if a.Code != 200 {
			t.Fatalf("%s: %s answered %+v; want 200", when, id, a)
		}
		return id
	}
	accepted("with every broker up")

	c.Brokers[0].Stop()
	waitLeaders(t, adm, topics, 2, 3)
	var ids []string
	for range 3 {
		ids = append(ids, accepted("with broker 1 of 3 down"))
	}
	recs := readTopic(t, brokers[1:], event.Topic(cfg.Kafka.TopicPrefix, event.PostPublished))
	for _, id := range ids {
		if countKey(recs, id) != 1 {
			t.Errorf("%s was answered 200 but is not in its topic once", id)
		}
	}

	c.Brokers[1].Stop()
	waitLeaders(t, adm, topics, 3)
	for range 2 {
		if a, id := deliver(); a.Code == 200 {
			t.Fatalf("with brokers 1 and 2 of 3 down, %s was answered %+v: a record on one broker only", id, a)
		} else if a.Code != 503 {
			t.Errorf("with two brokers of 3 down: %+v; want 503", a)
		}
	}
}

// refusesThin: topics that exist with one replica and min.insync.replicas 1 stop a bridge
// with kafka.require_durable from starting, the error naming each and what it lacks; without
// it the bridge starts, and warns.
func refusesThin(t *testing.T, adm *kadm.Client, brokers []string) {
	t.Helper()
	cfg := testConfig(t, brokers)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	resp, err := adm.CreateTopics(ctx, 2, 1, nil, event.Topics(cfg.Kafka.TopicPrefix)...)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	cfg.Kafka.RequireDurable = true
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	_, err = service.New(ctx, cfg, slog.New(slog.DiscardHandler), service.Options{})
	topic := event.Topic(cfg.Kafka.TopicPrefix, event.PostPublished)
	thin := "1 replica, want 3 (kafka.replication_factor); min.insync.replicas 1, want at least 2"
	if err == nil || !strings.Contains(err.Error(), "kafka.require_durable") || !strings.Contains(err.Error(), topic+": "+thin) {
		t.Fatalf("require_durable on topics of one replica: %v; want a refusal naming %s: %s", err, topic, thin)
	}
	cfg.Kafka.RequireDurable = false
	b := start(t, cfg)
	if logs := b.logs.String(); !strings.Contains(logs, "topic below the configured settings") || !strings.Contains(logs, "topic="+topic+` problems="`+thin) {
		t.Errorf("no warning of the thin topics:\n%s", logs)
	}
	b.stop(t)
}

type topicSettings struct {
	replicas           int
	minISR, maxMessage string
}

// settingsOf reads what Kafka applies to topic.
func settingsOf(t *testing.T, adm *kadm.Client, topic string) topicSettings {
	t.Helper()
	md, err := adm.Metadata(t.Context(), topic)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := adm.DescribeTopicConfigs(t.Context(), topic)
	if err != nil {
		t.Fatal(err)
	}
	c, err := rc.On(topic, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := topicSettings{replicas: len(md.Topics[topic].Partitions[0].Replicas)}
	for _, kv := range c.Configs {
		switch kv.Key {
		case "min.insync.replicas":
			s.minISR = kv.MaybeValue()
		case "max.message.bytes":
			s.maxMessage = kv.MaybeValue()
		}
	}
	return s
}

// waitLeaders waits until the cluster, asked through adm, has exactly the brokers live
// and no partition of topics has a leader or an in-sync replica outside them: the
// controller has seen the others go and moved what they led.
func waitLeaders(t *testing.T, adm *kadm.Client, topics []string, live ...int32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var last string
	for {
		md, err := adm.Metadata(ctx, topics...)
		if err == nil {
			if last = settled(md, live); last == "" {
				return
			}
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the cluster did not settle on brokers %v: %s", live, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// settled says what still differs from a cluster of the live brokers, "" if nothing.
func settled(md kadm.Metadata, live []int32) string {
	if len(md.Brokers) != len(live) {
		return fmt.Sprintf("%d brokers listed", len(md.Brokers))
	}
	for _, td := range md.Topics {
		for _, p := range td.Partitions {
			if p.Leader >= 0 && !slices.Contains(live, p.Leader) {
				return fmt.Sprintf("%s/%d led by %d", td.Topic, p.Partition, p.Leader)
			}
			for _, r := range p.ISR {
				if !slices.Contains(live, r) && len(p.ISR) > 1 {
					return fmt.Sprintf("%s/%d has %d in its ISR %v", td.Topic, p.Partition, r, p.ISR)
				}
			}
		}
	}
	return ""
}
