package consumers

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/socialbridge/bridge/config"
)

// Topic is a topic a group reads or writes.
type Topic struct {
	Name string
	// Compact makes it a compacted topic (cleanup.policy=compact, kept forever): the state a
	// group rebuilds by reading it whole. Otherwise kafka.retention applies.
	Compact bool
	// Configs are set when the topic is created, beside those above (e.g. segment.ms of a
	// compacted topic); an existing topic keeps its own.
	Configs map[string]string
}

// EnsureTopics creates the topics that do not exist yet (when kafka.create_topics is set),
// in one request per kind (compacted or not), with the configured partitions and
// replication, and waits until the cluster's metadata shows each with a leader for every
// partition. Without create_topics it only checks, and names the missing ones.
func EnsureTopics(ctx context.Context, cl *kgo.Client, k config.Kafka, topics ...Topic) error {
	if k.CreateTopics {
		if err := create(ctx, kadm.NewClient(cl), k, topics); err != nil {
			return err
		}
	}
	for {
		missing, err := missingTopics(ctx, cl, topics)
		if err == nil && len(missing) == 0 {
			return nil
		}
		if err == nil && !k.CreateTopics {
			return fmt.Errorf("topics missing (create them, or set kafka.create_topics): %v", missing)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("topics not visible (%v, %v): %w", missing, err, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// create creates topics in one request per kind (compacted or not), and one for each
// topic with configs of its own.
func create(ctx context.Context, adm *kadm.Client, k config.Kafka, topics []Topic) error {
	var plain, compact []string
	for _, t := range topics {
		switch {
		case len(t.Configs) > 0:
			if err := createAll(ctx, adm, k, t.configs(k), []string{t.Name}); err != nil {
				return err
			}
		case t.Compact:
			compact = append(compact, t.Name)
		default:
			plain = append(plain, t.Name)
		}
	}
	if err := createAll(ctx, adm, k, Topic{}.configs(k), plain); err != nil {
		return err
	}
	return createAll(ctx, adm, k, Topic{Compact: true}.configs(k), compact)
}

// configs are the configs t is created with.
func (t Topic) configs(k config.Kafka) map[string]*string {
	configs := map[string]*string{}
	switch {
	case t.Compact:
		configs["cleanup.policy"] = ptr("compact")
	case k.Retention > 0:
		configs["retention.ms"] = ptr(strconv.FormatInt(k.Retention.D().Milliseconds(), 10))
	}
	for name, v := range t.Configs {
		configs[name] = ptr(v)
	}
	return configs
}

func createAll(ctx context.Context, adm *kadm.Client, k config.Kafka, configs map[string]*string, topics []string) error {
	if len(topics) == 0 {
		return nil
	}
	resps, err := adm.CreateTopics(ctx, k.Partitions, k.ReplicationFactor, configs, topics...)
	if err != nil {
		return fmt.Errorf("create topics %v: %w", topics, err)
	}
	for _, r := range resps.Sorted() {
		if r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("create topic %s: %w", r.Topic, r.Err)
		}
	}
	return nil
}

// missingTopics asks a broker for the topics' metadata, not the client's cache (kadm's
// answers come from it, and a topic seen missing there stays missing for the client's
// metadata min age, 5 s), and names those without a leader for every partition.
func missingTopics(ctx context.Context, cl *kgo.Client, topics []Topic) ([]string, error) {
	req := kmsg.NewPtrMetadataRequest()
	for _, t := range topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(t.Name)
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return names(topics), err
	}
	led := map[string]bool{}
	for _, t := range resp.Topics {
		if t.Topic != nil && t.ErrorCode == 0 && len(t.Partitions) > 0 && allLed(t.Partitions) {
			led[*t.Topic] = true
		}
	}
	var missing []string
	for _, t := range topics {
		if !led[t.Name] {
			missing = append(missing, t.Name)
		}
	}
	return missing, nil
}

func allLed(ps []kmsg.MetadataResponseTopicPartition) bool {
	for _, p := range ps {
		if p.ErrorCode != 0 || p.Leader < 0 {
			return false
		}
	}
	return true
}

func names(topics []Topic) []string {
	out := make([]string, len(topics))
	for i, t := range topics {
		out[i] = t.Name
	}
	return out
}

// Partitions returns how many partitions topic has.
func Partitions(ctx context.Context, adm *kadm.Client, topic string) (int, error) {
	details, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return 0, err
	}
	d, ok := details[topic]
	if !ok || d.Err != nil {
		return 0, fmt.Errorf("topic %s: not found (%v)", topic, d.Err)
	}
	return len(d.Partitions), nil
}

func ptr(s string) *string { return &s }
