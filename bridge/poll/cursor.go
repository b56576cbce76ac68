package poll

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/internal/topics"
)

// StateTopic is the suffix of the compacted topic that keeps the cursors: {prefix}poll.state,
// one partition, keyed by source name, each record a Cursor in JSON.
const StateTopic = "poll.state"

// Topic is the cursors' topic of prefix: compacted, with one partition so that a source's
// cursors stay in order.
func Topic(prefix string) topics.Topic {
	return topics.Topic{Name: prefix + StateTopic, Compact: true, Partitions: 1}
}

// cursorSize bounds how many ids a cursor remembers: far more than a poll's new results, so
// that the newest of them being deleted at the provider does not lose the cursor's place.
const cursorSize = 1000

// Cursor is where a source's polls are: whether the source was polled before, the ids of
// the newest results already handled, newest first, and the backlog: how many results
// above them were known to wait when it was saved, at least (see resume.go).
type Cursor struct {
	Started bool     `json:"started"`
	Seen    []string `json:"seen"`
	Depth   int      `json:"depth,omitempty"`
}

// seen reports whether the cursor has handled id.
func (c Cursor) seen(id string) bool { return slices.Contains(c.Seen, id) }

// advance returns the cursor after fresh, the new results, newest first, are handled, with
// depth results still waiting above them.
func (c Cursor) advance(fresh []string, depth int) Cursor {
	seen := append(slices.Clone(fresh), c.Seen...)
	return Cursor{Started: true, Seen: seen[:min(len(seen), cursorSize)], Depth: depth}
}

// Cursors keeps the cursors. Save must not return before the cursor is durable.
type Cursors interface {
	Load(ctx context.Context) (map[string]Cursor, error)
	Save(ctx context.Context, source string, c Cursor) error
}

// KafkaCursors keeps the cursors in {prefix}poll.state, written with the bridge's producer
// client: a cursor is saved once Kafka has it (acks=all).
type KafkaCursors struct {
	cl    *kgo.Client
	topic string
}

// NewKafkaCursors keeps the cursors in the state topic of prefix, through cl, a producer
// client (it must not be a group consumer: Load reads on a client built from cl.Opts()).
func NewKafkaCursors(cl *kgo.Client, prefix string) *KafkaCursors {
	return &KafkaCursors{cl: cl, topic: prefix + StateTopic}
}

// Save writes c as source's cursor and waits for Kafka's acknowledgement.
func (k *KafkaCursors) Save(ctx context.Context, source string, c Cursor) error {
	value, err := json.Marshal(c)
	if err != nil {
		return err
	}
	rec := &kgo.Record{Topic: k.topic, Key: []byte(source), Value: value}
	if err := k.cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
		return fmt.Errorf("poll: save the cursor of %s: %w", source, err)
	}
	return nil
}

// Load reads the state topic to its end and returns the latest cursor of each source. A
// topic that does not exist holds no cursor.
func (k *KafkaCursors) Load(ctx context.Context) (map[string]Cursor, error) {
	adm := kadm.NewClient(k.cl)
	ends, err := adm.ListEndOffsets(ctx, k.topic)
	if err != nil {
		return nil, fmt.Errorf("poll: list the offsets of %s: %w", k.topic, err)
	}
	end, ok := ends.Lookup(k.topic, 0)
	switch {
	case !ok || errors.Is(end.Err, kerr.UnknownTopicOrPartition) || end.Offset == 0:
		return map[string]Cursor{}, nil
	case end.Err != nil:
		return nil, fmt.Errorf("poll: list the offsets of %s: %w", k.topic, end.Err)
	}
	return k.read(ctx, end.Offset)
}

func (k *KafkaCursors) read(ctx context.Context, end int64) (map[string]Cursor, error) {
	rc, err := kgo.NewClient(append(slices.Clip(k.cl.Opts()),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{k.topic: {0: kgo.NewOffset().AtStart()}}))...)
	if err != nil {
		return nil, fmt.Errorf("poll: state client: %w", err)
	}
	defer rc.Close()
	cursors := map[string]Cursor{}
	for last := int64(-1); last < end-1; {
		fs := rc.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("poll: read %s: %w", k.topic, err)
		}
		if err := fs.Err(); err != nil {
			return nil, fmt.Errorf("poll: read %s: %w", k.topic, err)
		}
		for _, r := range fs.Records() {
			var c Cursor
			if err := json.Unmarshal(r.Value, &c); err != nil {
				return nil, fmt.Errorf("poll: %s offset %s: a cursor that is not JSON: %w", k.topic, strconv.FormatInt(r.Offset, 10), err)
			}
			cursors[string(r.Key)], last = c, r.Offset
		}
	}
	return cursors, nil
}
