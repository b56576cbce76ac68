package redrive

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/internal/kafkaconn"
	"github.com/socialbridge/bridge/internal/topics"
)

// answerTimeout bounds the first question to the cluster: a cluster that does not answer
// it by then is reported unreachable rather than waited for.
const answerTimeout = 15 * time.Second

// cluster is a connection to the configured Kafka, for listing and reading.
type cluster struct {
	k    config.Kafka
	opts []kgo.Opt // of every client made for a read
	cl   *kgo.Client
	adm  *kadm.Client
}

func dial(k config.Kafka) (*cluster, error) {
	opts := kafkaconn.Options(k)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	return &cluster{k: k, opts: opts, cl: cl, adm: kadm.NewClient(cl)}, nil
}

func (c *cluster) Close() { c.cl.Close() }

// topicID returns the id of topic, and whether it exists. It is the first question to the
// cluster, and the one that says when the cluster cannot be reached.
func (c *cluster) topicID(ctx context.Context, topic string) (kadm.TopicID, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, answerTimeout)
	defer cancel()
	ds, err := c.adm.ListTopics(ctx, topic)
	if err != nil {
		if ctx.Err() != nil {
			return kadm.TopicID{}, false, fmt.Errorf("kafka at %v did not answer within %s: %w", c.k.Brokers, answerTimeout, err)
		}
		return kadm.TopicID{}, false, fmt.Errorf("kafka at %v: %w", c.k.Brokers, err)
	}
	d, ok := ds[topic]
	if !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
		return kadm.TopicID{}, false, nil
	}
	if d.Err != nil {
		return kadm.TopicID{}, false, fmt.Errorf("topic %s: %w", topic, d.Err)
	}
	return d.ID, true, nil
}

// ensure creates the topics that do not exist (when kafka.create_topics allows it), or
// names the missing ones.
func (c *cluster) ensure(ctx context.Context, ts ...topics.Topic) error {
	ctx, cancel := context.WithTimeout(ctx, answerTimeout)
	defer cancel()
	if err := topics.Ensure(ctx, c.cl, c.k, nil, ts...); err != nil {
		return fmt.Errorf("kafka at %v: %w", c.k.Brokers, err)
	}
	return nil
}
