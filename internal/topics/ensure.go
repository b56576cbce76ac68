package topics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/socialbridge/bridge/config"
)

// retryEvery is how often a broker is asked again while topics are not there yet.
const retryEvery = 100 * time.Millisecond

// Ensure makes sure the topics ts exist, with a leader for every partition, and checks
// their settings (see Check). With kafka.create_topics it creates those that do not exist
// (an existing topic is left as it is); without, it fails at once naming the missing ones
// and the shape each must have. It retries until ctx ends while no broker answers.
// Warnings go to log; nil discards them.
func Ensure(ctx context.Context, cl *kgo.Client, k config.Kafka, log *slog.Logger, ts ...Topic) error {
	log = orDiscard(log)
	md, err := firstAnswer(ctx, cl, names(ts))
	if err != nil {
		return err
	}
	s, err := settingsFor(k, len(md.Brokers), log)
	if err != nil {
		return err
	}
	absent := absentOf(md, ts)
	switch {
	case len(absent) > 0 && !k.CreateTopics:
		return fmt.Errorf("topics missing (create them, or set kafka.create_topics): %s", shapes(absent, s.partitions))
	case len(absent) > 0:
		if err := create(ctx, cl, s, absent); err != nil {
			return err
		}
	}
	if err := waitLed(ctx, cl, ts); err != nil {
		return err
	}
	return check(ctx, cl, k, s, log, ts)
}

// firstAnswer asks a broker for the metadata of names until one answers or ctx ends.
func firstAnswer(ctx context.Context, cl *kgo.Client, names []string) (*kmsg.MetadataResponse, error) {
	for {
		md, err := describe(ctx, cl, names)
		if err == nil {
			return md, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("no broker answered: %w (last error: %v)", ctx.Err(), err)
		case <-time.After(retryEvery):
		}
	}
}

func absentOf(md *kmsg.MetadataResponse, ts []Topic) []Topic {
	have := byName(md)
	var out []Topic
	for _, t := range ts {
		if have[t.Name] == nil {
			out = append(out, t)
		}
	}
	return out
}

func shapes(ts []Topic, partitions int32) string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.shape(partitions)
	}
	return strings.Join(out, ", ")
}

// create creates ts, each with its own settings, in one request to the controller. A topic
// that another process created meanwhile is fine.
func create(ctx context.Context, cl *kgo.Client, s settings, ts []Topic) error {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = int32(startTimeout(ctx).Milliseconds())
	for _, t := range ts {
		req.Topics = append(req.Topics, s.request(t))
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("create topics %v: %w", names(ts), err)
	}
	for _, rt := range resp.Topics {
		err := kerr.ErrorForCode(rt.ErrorCode)
		if err == nil || errors.Is(err, kerr.TopicAlreadyExists) {
			continue
		}
		if rt.ErrorMessage != nil {
			err = fmt.Errorf("%w: %s", err, *rt.ErrorMessage)
		}
		return fmt.Errorf("create topic %s: %w", rt.Topic, err)
	}
	return nil
}

// startTimeout is how long the controller may take over a creation: what is left of ctx,
// within bounds.
func startTimeout(ctx context.Context) time.Duration {
	d := 30 * time.Second
	if deadline, ok := ctx.Deadline(); ok {
		d = time.Until(deadline)
	}
	return min(max(d, time.Second), 60*time.Second)
}

// waitLed returns once a broker's metadata shows every topic of ts with a leader for each
// partition, so that the first write does not meet an unknown topic or partition.
func waitLed(ctx context.Context, cl *kgo.Client, ts []Topic) error {
	var last string
	for {
		md, err := describe(ctx, cl, names(ts))
		if err == nil {
			if last = unled(md, ts); last == "" {
				return nil
			}
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("topics not ready (%s): %w", last, ctx.Err())
		case <-time.After(retryEvery):
		}
	}
}

// unled names the topics of ts that do not exist or lack a leader somewhere, "" if none.
func unled(md *kmsg.MetadataResponse, ts []Topic) string {
	have := byName(md)
	var out []string
	for _, t := range ts {
		if mt := have[t.Name]; mt == nil || !led(mt) {
			out = append(out, t.Name)
		}
	}
	return strings.Join(out, ", ")
}

func orDiscard(log *slog.Logger) *slog.Logger {
	if log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return log
}
