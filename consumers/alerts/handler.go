package alerts

import (
	"context"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/bridge/event"
	"github.com/socialbridge/bridge/consumers"
	"github.com/socialbridge/bridge/schemas"
)

// handler handles one batch: input records are re-keyed into the keyed topic; keyed records
// are decided against their key's state.
type handler struct {
	prefix   string
	cooldown time.Duration
	dec      schemas.Decoder
	holds    *consumers.Holds
	metrics  *consumers.Metrics
	log      *slog.Logger
	parts    *parts
	deliver  *deliverer
	keyedN   int                           // partitions of the keyed and state topics
	hash     kgo.TopicPartitioner          // the Kafka default: murmur2 of the key
	pending  map[*partition]map[Key]*Alert // decisions of the open batch
}

// holdRetry is how long a partition waits when a record cannot be handled for a passing
// reason (the schema registry unreachable).
const holdRetry = time.Second

func (h *handler) Handle(ctx context.Context, tx *consumers.Tx, fs kgo.Fetches) error {
	h.pending = map[*partition]map[Key]*Alert{}
	fs.EachPartition(func(fp kgo.FetchTopicPartition) {
		for _, r := range fp.Records {
			if !h.handle(ctx, tx, r) {
				h.holds.Hold(tx.Client(), r, time.Now().Add(holdRetry))
				return
			}
		}
	})
	return nil
}

// handle handles one record, or reports that it cannot be handled yet.
func (h *handler) handle(ctx context.Context, tx *consumers.Tx, r *kgo.Record) bool {
	var ev event.Event
	if err := h.dec.Decode(r.Value, &ev); err != nil {
		if !consumers.Undecodable(err) {
			h.log.Warn("decode failed; partition held", "topic", r.Topic, "partition", r.Partition, "err", err)
			return false
		}
		h.deadLetter(ctx, tx, r, "undecodable value: "+err.Error())
		return true
	}
	if r.Topic != Keyed(h.prefix) {
		h.forward(ctx, tx, r, &ev)
		return true
	}
	p := h.parts.get(r.Partition)
	if p == nil {
		return false // its state is not loaded: the assignment is still being set up
	}
	h.decide(ctx, tx, p, r, &ev)
	return true
}

// forward re-keys an input record into the keyed topic, on the partition of its key.
func (h *handler) forward(ctx context.Context, tx *consumers.Tx, r *kgo.Record, ev *event.Event) {
	out := &kgo.Record{Topic: Keyed(h.prefix), Key: keyOf(ev).bytes(), Value: r.Value, Headers: r.Headers}
	out.Partition = int32(h.hash.Partition(out, h.keyedN))
	tx.Produce(ctx, out)
	h.metrics.Processed.WithLabelValues(r.Topic, "forwarded").Inc()
}

// decide applies a keyed record to its key's alert; a change is written to the state topic
// in this batch's transaction, and its message posted once the transaction commits.
func (h *handler) decide(ctx context.Context, tx *consumers.Tx, p *partition, r *kgo.Record, ev *event.Event) {
	k := keyOf(ev)
	cur := h.current(p, k)
	var next *Alert
	changed, outcome := false, "ignored"
	switch ev.Type {
	case event.PostTokenExpired:
		next, changed = expire(cur, ev, h.cooldown)
		outcome = pick(changed, "alerted", "suppressed")
	case event.PostPublished:
		next, changed = publish(cur, ev)
		outcome = pick(changed, "resolved", "ignored")
	}
	h.metrics.Processed.WithLabelValues(r.Topic, outcome).Inc()
	if !changed {
		return
	}
	if h.pending[p] == nil {
		h.pending[p] = map[Key]*Alert{}
	}
	h.pending[p][k] = next
	tx.Produce(ctx, &kgo.Record{Topic: State(h.prefix), Partition: p.id, Key: k.stateKey(kindAlert), Value: mustJSON(next)})
}

// current is k's alert as this batch left it, else as committed.
func (h *handler) current(p *partition, k Key) *Alert {
	if a, ok := h.pending[p][k]; ok {
		return a
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.alerts[k]
}

func (h *handler) deadLetter(ctx context.Context, tx *consumers.Tx, r *kgo.Record, reason string) {
	tx.Produce(ctx, consumers.DeadLetter(r, DLQ(h.prefix), reason))
	h.metrics.DeadLettered.WithLabelValues("undecodable").Inc()
	h.metrics.Processed.WithLabelValues(r.Topic, "dead_lettered").Inc()
	h.log.Info("dead-lettered", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "reason", reason)
}

// Ended makes the batch's decisions the committed state and starts the workers of the
// messages they owe; after an abort they are forgotten, as the records are polled again.
func (h *handler) Ended(committed bool) {
	if committed {
		for p, decided := range h.pending {
			p.mu.Lock()
			for k, a := range decided {
				p.alerts[k] = a
				h.deliver.kick(p, k)
			}
			p.mu.Unlock()
		}
	}
	h.pending = nil
}

func pick(c bool, yes, no string) string {
	if c {
		return yes
	}
	return no
}
