package alerts

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/consumers"
	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/schemas"
)

// handler handles one batch: input records are re-keyed into the keyed topic as notices;
// notices are decided against their key's state.
type handler struct {
	keyed, state, dlq string // topics
	cooldown          time.Duration
	dec               *schemas.Reader
	holds             *consumers.Holds
	metrics           *consumers.Metrics
	log               *slog.Logger
	parts             *parts
	deliver           *deliverer
	keyedN            int                           // partitions of the keyed and state topics
	hash              kgo.TopicPartitioner          // the Kafka default, murmur2 of the key; safe for concurrent use with a key
	pending           map[*partition]map[Key]*Alert // decisions of the open batch
}

// holdRetry is how long a partition waits when a record cannot be handled for a passing
// reason (the schema registry unreachable).
const holdRetry = time.Second

// Handle re-keys each input partition's records in a goroutine of its own (decoding them is
// most of the batch's work, and each partition's records keep their order), and decides
// the keyed partitions' one partition after another, as they share the batch's pending
// decisions.
func (h *handler) Handle(ctx context.Context, tx *consumers.Tx, fs kgo.Fetches) error {
	h.pending = map[*partition]map[Key]*Alert{}
	var wg sync.WaitGroup
	fs.EachPartition(func(fp kgo.FetchTopicPartition) {
		if fp.Topic == h.keyed {
			h.decideAll(ctx, tx, h.parts.get(fp.Partition), fp.Records)
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.forwardAll(ctx, tx, fp.Records)
		}()
	})
	wg.Wait()
	return nil
}

// forwardAll re-keys one input partition's records, up to the first that cannot be handled
// yet, which it holds.
func (h *handler) forwardAll(ctx context.Context, tx *consumers.Tx, rs []*kgo.Record) {
	var ev event.Event // reused: each decode replaces it whole
	for _, r := range rs {
		if !h.forward(ctx, tx, r, &ev) {
			h.holds.Hold(tx.Client(), r, time.Now().Add(holdRetry))
			return
		}
	}
}

// decideAll decides one keyed partition's records, whose state is p (nil while it is not
// loaded), up to the first that cannot be handled yet, which it holds.
func (h *handler) decideAll(ctx context.Context, tx *consumers.Tx, p *partition, rs []*kgo.Record) {
	for _, r := range rs {
		if p == nil || !h.decideRecord(ctx, tx, p, r) {
			h.holds.Hold(tx.Client(), r, time.Now().Add(holdRetry))
			return
		}
	}
}

// forward re-keys an input record into the keyed topic, as a notice on the partition of its
// key, or reports that it cannot be handled yet. A record of a type the group does not
// decide on goes no further.
func (h *handler) forward(ctx context.Context, tx *consumers.Tx, r *kgo.Record, ev *event.Event) bool {
	if err := h.dec.DecodeWithoutRaw(r.Value, ev); err != nil {
		return h.undecodable(ctx, tx, r, err)
	}
	if ev.Type != event.PostTokenExpired && ev.Type != event.PostPublished {
		tx.Count(r.Topic, "ignored")
		return true
	}
	n := noticeOf(ev, r)
	out := &kgo.Record{Topic: h.keyed, Key: n.Key.bytes(), Value: n.appendTo(make([]byte, 0, noticeSize))}
	out.Partition = int32(h.hash.Partition(out, h.keyedN))
	tx.Produce(ctx, out)
	tx.Count(r.Topic, "forwarded")
	return true
}

// decideRecord decides one keyed record, or reports that it cannot be handled yet.
func (h *handler) decideRecord(ctx context.Context, tx *consumers.Tx, p *partition, r *kgo.Record) bool {
	n, err := h.notice(r)
	if err != nil {
		return h.undecodable(ctx, tx, r, err)
	}
	h.decide(ctx, tx, p, r, &n)
	return true
}

// noticeSize is room for a typical notice, so that encoding one allocates once.
const noticeSize = 192

// notice reads a keyed record's notice. A value the keyed topic held before notices (the
// whole event, as the ingress wrote it) is read as the event; its origin is then unknown,
// and the keyed record stands for it.
func (h *handler) notice(r *kgo.Record) (notice, error) {
	n, err := readNotice(r.Value)
	if !errors.Is(err, errNotNotice) {
		return n, err
	}
	var ev event.Event
	if err := h.dec.DecodeWithoutRaw(r.Value, &ev); err != nil {
		return notice{}, err
	}
	return noticeOf(&ev, r), nil
}

// undecodable dead-letters r when err means its value will never decode, and reports
// whether r is handled; after a passing failure (the registry unreachable) it is not.
func (h *handler) undecodable(ctx context.Context, tx *consumers.Tx, r *kgo.Record, err error) bool {
	if !errors.Is(err, errBadNotice) && !consumers.Undecodable(err) {
		h.log.Warn("decode failed; partition held", "topic", r.Topic, "partition", r.Partition, "err", err)
		return false
	}
	h.deadLetter(ctx, tx, r, "undecodable value: "+err.Error())
	return true
}

// decide applies a notice to its key's alert; a change is written to the state topic in
// this batch's transaction, and its message posted once the transaction commits.
func (h *handler) decide(ctx context.Context, tx *consumers.Tx, p *partition, r *kgo.Record, n *notice) {
	cur := h.current(p, n.Key)
	var next *Alert
	changed, outcome := false, "ignored"
	switch n.Type {
	case event.PostTokenExpired:
		next, changed = expire(cur, n, h.cooldown)
		outcome = pick(changed, "alerted", "suppressed")
	case event.PostPublished:
		next, changed = publish(cur, n)
		outcome = pick(changed, "resolved", "ignored")
	}
	tx.Count(r.Topic, outcome)
	if !changed {
		return
	}
	h.log.Debug("decided", "outcome", outcome, "event_id", n.ID, "source", n.Key.Source, "profile", n.Key.Profile, "platform", n.Key.Platform,
		"origin_topic", n.Origin.Topic, "origin_partition", n.Origin.Partition, "origin_offset", n.Origin.Offset)
	if h.pending[p] == nil {
		h.pending[p] = map[Key]*Alert{}
	}
	h.pending[p][n.Key] = next
	tx.Produce(ctx, &kgo.Record{Topic: h.state, Partition: p.id, Key: n.Key.stateKey(kindAlert), Value: mustJSON(next)})
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
	tx.Produce(ctx, consumers.DeadLetter(r, h.dlq, reason))
	tx.CountDeadLettered("undecodable")
	tx.Count(r.Topic, "dead_lettered")
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
