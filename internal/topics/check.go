package topics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/socialbridge/bridge/config"
)

// The topic configs a check reads.
const (
	minISRConfig     = "min.insync.replicas"
	maxMessageConfig = "max.message.bytes"
)

// Check reads the settings of those of ts that exist, as Kafka applies them (a topic's own
// or its broker's default), and compares them with the configuration's: fewer replicas
// than kafka.replication_factor (or the brokers' count, when the cluster has fewer), a
// lower min.insync.replicas, or a max.message.bytes below kafka.max_message_bytes. Each
// topic below is a warning to log (nil discards it) or, with kafka.require_durable, the
// error names them all. A topic whose settings cannot be read counts as below.
func Check(ctx context.Context, cl *kgo.Client, k config.Kafka, log *slog.Logger, ts ...Topic) error {
	log = orDiscard(log)
	md, err := firstAnswer(ctx, cl, names(ts))
	if err != nil {
		return err
	}
	s, err := settingsFor(k, len(md.Brokers), log)
	if err != nil {
		return err
	}
	return check(ctx, cl, k, s, log, ts)
}

func check(ctx context.Context, cl *kgo.Client, k config.Kafka, s settings, log *slog.Logger, ts []Topic) error {
	md, err := describe(ctx, cl, names(ts))
	if err != nil {
		return fmt.Errorf("read the topics' settings: %w", err)
	}
	have := byName(md)
	var existing []string
	for _, t := range ts {
		if have[t.Name] != nil {
			existing = append(existing, t.Name)
		}
	}
	configs, err := describeConfigs(ctx, cl, existing)
	if err != nil {
		return fmt.Errorf("read the topics' settings: %w", err)
	}
	var below []string
	for _, name := range existing {
		problems := s.shortfalls(have[name], configs[name])
		if len(problems) == 0 {
			continue
		}
		if !k.RequireDurable {
			log.Warn("topic below the configured settings: a record Kafka acknowledged may be lost with a broker, or a delivery near http.max_body_bytes refused (see docs/topics.md to raise them; kafka.require_durable refuses to start instead)",
				"topic", name, "problems", strings.Join(problems, "; "))
		}
		below = append(below, name+": "+strings.Join(problems, "; "))
	}
	if k.RequireDurable && len(below) > 0 {
		return fmt.Errorf("kafka.require_durable: topics below the configured settings (see docs/topics.md): %s", strings.Join(below, "; "))
	}
	return nil
}

// topicConfigs are the configs of one topic that a check reads, or why they could not be.
type topicConfigs struct {
	values map[string]string
	err    error
}

// describeConfigs reads min.insync.replicas and max.message.bytes of each of names.
func describeConfigs(ctx context.Context, cl *kgo.Client, names []string) (map[string]topicConfigs, error) {
	out := make(map[string]topicConfigs, len(names))
	if len(names) == 0 {
		return out, nil
	}
	req := kmsg.NewPtrDescribeConfigsRequest()
	for _, n := range names {
		r := kmsg.NewDescribeConfigsRequestResource()
		r.ResourceType, r.ResourceName = kmsg.ConfigResourceTypeTopic, n
		r.ConfigNames = []string{minISRConfig, maxMessageConfig}
		req.Resources = append(req.Resources, r)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, err
	}
	for _, r := range resp.Resources {
		tc := topicConfigs{values: map[string]string{}, err: kerr.ErrorForCode(r.ErrorCode)}
		for _, c := range r.Configs {
			if c.Value != nil {
				tc.values[c.Name] = *c.Value
			}
		}
		out[r.ResourceName] = tc
	}
	return out, nil
}

// shortfalls lists how topic t, with configs c, falls below s; none if it does not.
func (s settings) shortfalls(t *kmsg.MetadataResponseTopic, c topicConfigs) []string {
	var out []string
	if replicas := fewestReplicas(t); s.replication > 0 && replicas < int(s.replication) {
		out = append(out, fmt.Sprintf("%s, want %d (kafka.replication_factor)", count(replicas, "replica"), s.replication))
	}
	if c.err != nil || c.values == nil {
		return append(out, fmt.Sprintf("settings unreadable: %v", cmpErr(c.err)))
	}
	if s.minISR > 0 {
		out = append(out, below(c.values, minISRConfig, s.minISR, "kafka.min_insync_replicas")...)
	}
	if s.maxMessage > 0 {
		out = append(out, below(c.values, maxMessageConfig, s.maxMessage, "kafka.max_message_bytes, derived from http.max_body_bytes")...)
	}
	return out
}

// below says how the config name in values falls below want, if it does.
func below(values map[string]string, name string, want int, key string) []string {
	v, ok := values[name]
	n, err := strconv.Atoi(v)
	switch {
	case !ok || err != nil:
		return []string{fmt.Sprintf("%s unreadable (%q)", name, v)}
	case n < want:
		return []string{fmt.Sprintf("%s %d, want at least %d (%s)", name, n, want, key)}
	}
	return nil
}

// fewestReplicas is the least count of replicas of a partition of t.
func fewestReplicas(t *kmsg.MetadataResponseTopic) int {
	fewest := -1
	for _, p := range t.Partitions {
		if fewest < 0 || len(p.Replicas) < fewest {
			fewest = len(p.Replicas)
		}
	}
	return fewest
}

// count is "1 replica", "2 replicas".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

func cmpErr(err error) error {
	if err == nil {
		return errors.New("no answer for the topic")
	}
	return err
}
