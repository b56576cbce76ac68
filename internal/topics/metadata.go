package topics

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// describe asks a broker for the metadata of the topics names: their partitions, leaders and
// replicas, and the cluster's live brokers. It fails when no broker answers within ctx.
func describe(ctx context.Context, cl *kgo.Client, names []string) (*kmsg.MetadataResponse, error) {
	req := kmsg.NewPtrMetadataRequest()
	req.AllowAutoTopicCreation = false
	for _, n := range names {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(n)
		req.Topics = append(req.Topics, rt)
	}
	return req.RequestWith(ctx, cl)
}

// byName indexes the topics of a metadata answer that exist.
func byName(md *kmsg.MetadataResponse) map[string]*kmsg.MetadataResponseTopic {
	out := make(map[string]*kmsg.MetadataResponseTopic, len(md.Topics))
	for i := range md.Topics {
		t := &md.Topics[i]
		if t.Topic != nil && t.ErrorCode == 0 && len(t.Partitions) > 0 {
			out[*t.Topic] = t
		}
	}
	return out
}

// led reports whether every partition of t has a leader.
func led(t *kmsg.MetadataResponseTopic) bool {
	for _, p := range t.Partitions {
		if p.ErrorCode != 0 || p.Leader < 0 {
			return false
		}
	}
	return true
}

// Missing returns those of names that Kafka does not have. It fails when no broker answers
// within ctx: a cached answer would say that a broker that is gone is still there.
func Missing(ctx context.Context, cl *kgo.Client, names ...string) ([]string, error) {
	md, err := describe(ctx, cl, names)
	if err != nil {
		return nil, err
	}
	have := byName(md)
	var missing []string
	for _, n := range names {
		if have[n] == nil {
			missing = append(missing, n)
		}
	}
	return missing, nil
}

// Partitions returns how many partitions topic has.
func Partitions(ctx context.Context, cl *kgo.Client, topic string) (int, error) {
	md, err := describe(ctx, cl, []string{topic})
	if err != nil {
		return 0, err
	}
	t := byName(md)[topic]
	if t == nil {
		return 0, fmt.Errorf("topic %s: not found (%v)", topic, topicErr(md, topic))
	}
	return len(t.Partitions), nil
}

// topicErr is the error the answer gives for topic, if any.
func topicErr(md *kmsg.MetadataResponse, topic string) error {
	for _, t := range md.Topics {
		if t.Topic != nil && *t.Topic == topic {
			return kerr.ErrorForCode(t.ErrorCode)
		}
	}
	return nil
}
