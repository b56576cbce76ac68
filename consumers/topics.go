package consumers

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/socialbridge/bridge/config"
)

// Topic is a topic a group reads or writes.
type Topic struct {
	Name string
	// Compact makes it a compacted topic (cleanup.policy=compact, kept forever): the state a
	// group rebuilds by reading it whole. Otherwise kafka.retention applies.
	Compact bool
}

// EnsureTopics creates the topics that do not exist yet (when kafka.create_topics is set),
// with the configured partitions and replication, and waits until the cluster's metadata
// shows them all. Without create_topics it only checks, and names the missing ones.
func EnsureTopics(ctx context.Context, adm *kadm.Client, k config.Kafka, topics ...Topic) error {
	if k.CreateTopics {
		for _, t := range topics {
			if err := create(ctx, adm, k, t); err != nil {
				return err
			}
		}
	}
	for {
		missing, err := missingTopics(ctx, adm, topics)
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

func create(ctx context.Context, adm *kadm.Client, k config.Kafka, t Topic) error {
	configs := map[string]*string{}
	if t.Compact {
		configs["cleanup.policy"] = ptr("compact")
	} else if k.Retention > 0 {
		configs["retention.ms"] = ptr(strconv.FormatInt(k.Retention.D().Milliseconds(), 10))
	}
	resp, err := adm.CreateTopic(ctx, k.Partitions, k.ReplicationFactor, configs, t.Name)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create topic %s: %w", t.Name, err)
	}
	return nil
}

func missingTopics(ctx context.Context, adm *kadm.Client, topics []Topic) ([]string, error) {
	names := make([]string, len(topics))
	for i, t := range topics {
		names[i] = t.Name
	}
	details, err := adm.ListTopics(ctx, names...)
	if err != nil {
		return names, err
	}
	var missing []string
	for _, n := range names {
		if d, ok := details[n]; !ok || d.Err != nil {
			missing = append(missing, n)
		}
	}
	return missing, nil
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
