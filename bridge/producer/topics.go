package producer

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
	"github.com/socialbridge/bridge/event"
)

// CreateTopics creates the bridge's topics that do not exist yet, with the configured
// partitions, replication and retention, and waits until the cluster's metadata shows them
// all, so the first requests do not meet unknown topics. Existing topics are left as they are.
func CreateTopics(ctx context.Context, adm *kadm.Client, k config.Kafka) error {
	configs := map[string]*string{}
	if k.Retention > 0 {
		ms := strconv.FormatInt(k.Retention.D().Milliseconds(), 10)
		configs["retention.ms"] = &ms
	}
	resp, err := adm.CreateTopics(ctx, k.Partitions, k.ReplicationFactor, configs, event.Topics(k.TopicPrefix)...)
	if err != nil {
		return fmt.Errorf("create topics: %w", err)
	}
	for _, r := range resp.Sorted() {
		if r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("create topic %s: %w", r.Topic, r.Err)
		}
	}
	return waitForTopics(ctx, adm, k.TopicPrefix)
}

func waitForTopics(ctx context.Context, adm *kadm.Client, prefix string) error {
	for {
		missing, err := MissingTopics(ctx, adm, prefix)
		if err == nil && len(missing) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("topics not visible after creation (%v): %w", missing, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// MissingTopics returns the bridge's topics that Kafka does not have. An error means Kafka
// could not be asked.
func MissingTopics(ctx context.Context, adm *kadm.Client, prefix string) ([]string, error) {
	want := event.Topics(prefix)
	details, err := adm.ListTopics(ctx, want...)
	if err != nil {
		return nil, err
	}
	var missing []string
	for _, t := range want {
		if d, ok := details[t]; !ok || d.Err != nil {
			missing = append(missing, t)
		}
	}
	return missing, nil
}

// Probe asks a broker, never the client's cache of metadata, for the bridge's topics, and
// returns those Kafka does not have. It fails when no broker answers within ctx: a cached
// answer would say a broker that is gone is still there.
func Probe(ctx context.Context, cl *kgo.Client, prefix string) ([]string, error) {
	want := event.Topics(prefix)
	req := kmsg.NewPtrMetadataRequest()
	req.AllowAutoTopicCreation = false
	for _, t := range want {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(t)
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, err
	}
	have := make(map[string]bool, len(resp.Topics))
	for _, t := range resp.Topics {
		if t.Topic != nil && t.ErrorCode == 0 {
			have[*t.Topic] = true
		}
	}
	var missing []string
	for _, t := range want {
		if !have[t] {
			missing = append(missing, t)
		}
	}
	return missing, nil
}
