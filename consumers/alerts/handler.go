package alerts

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/socialbridge/bridge/consumers"
	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/internal/telemetry"
	"github.com/socialbridge/bridge/schemas"
)

// handler handles one batch: input records are re-keyed into the keyed topic as notices;
// notices are decided against their key's state.
type handler struct {
	keyed, state, dlq string // topics
	cooldown          time.Duration
	forgetAfter       time.Duration // how long a settled key's state outlives its last event
	sweepEvery        time.Duration // of stream time, between two looks for forgettable keys
	dec               *schemas.Reader
	holds             *consumers.Holds
	metrics           *consumers.Metrics
	log               *slog.Logger
	parts             *parts
	loads             prometheus.Histogram // state loads' durations
	deliver           *deliverer
	keyedN            int                     // partitions of the keyed and state topics
	hash              kgo.TopicPartitioner    // the Kafka default, murmur2 of the key; safe for concurrent use with a key
	pending           map[*partition]*changes // decisions of the open batch
	group             string
	tracer            trace.Tracer // nil: tracing is off
}

// batch is what handling needs of the open transaction: consumers.Tx, and holding a
// partition. The model test drives the handler through it without Kafka.
type batch interface {
	Produce(ctx context.Context, r *kgo.Record)
	Count(topic, outcome string)
	CountDeadLettered(reason string)
	Hold(r *kgo.Record, until time.Time)
}

// txBatch is the batch of a consumers.Loop.
type txBatch struct {
	*consumers.Tx
	holds *consumers.Holds
}

func (b txBatch) Hold(r *kgo.Record, until time.Time) { b.holds.Hold(b.Client(), r, until) }

// holdRetry is how long a partition waits when a record cannot be handled for a passing
// reason (the schema registry unreachable, the partition's state not loaded).
const holdRetry = time.Second

// Handle handles a batch of a consumers.Loop.
func (h *handler) Handle(ctx context.Context, tx *consumers.Tx, fs kgo.Fetches) error {
	return h.handle(ctx, txBatch{Tx: tx, holds: h.holds}, fs)
}

// handle re-keys each input partition's records in a goroutine of its own (decoding them is
// most of the batch's work, and each partition's records keep their order), and decides
// the keyed partitions' one partition after another, as they share the batch's pending
// decisions. A keyed partition's changed keys are written to the state topic once each,
// after its records are decided and its forgettable keys found.
func (h *handler) handle(ctx context.Context, tx batch, fs kgo.Fetches) error {
	h.pending = map[*partition]*changes{}
	var wg sync.WaitGroup
	fs.EachPartition(func(fp kgo.FetchTopicPartition) {
		if fp.Topic == h.keyed {
			p := h.parts.get(fp.Partition)
			h.decideAll(ctx, tx, p, fp.Records)
			if c := h.pending[p]; c != nil {
				h.sweep(p, c)
				h.write(ctx, tx, p, c)
			}
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
func (h *handler) forwardAll(ctx context.Context, tx batch, rs []*kgo.Record) {
	var ev event.Event // reused: each decode replaces it whole
	for _, r := range rs {
		if !h.forward(ctx, tx, r, &ev) {
			tx.Hold(r, time.Now().Add(holdRetry))
			return
		}
	}
}

// decideAll decides one keyed partition's records, whose state is p (nil while it is not
// loaded), up to the first that cannot be handled yet, which it holds.
func (h *handler) decideAll(ctx context.Context, tx batch, p *partition, rs []*kgo.Record) {
	for _, r := range rs {
		if p == nil || !h.decideRecord(ctx, tx, p, r) {
			tx.Hold(r, time.Now().Add(holdRetry))
			return
		}
	}
}

// forward re-keys an input record into the keyed topic, as a notice on the partition of its
// key, or reports that it cannot be handled yet. A record of a type the group does not
// decide on goes no further.
func (h *handler) forward(ctx context.Context, tx batch, r *kgo.Record, ev *event.Event) bool {
	ctx, span := telemetry.Process(h.tracer, ctx, r, h.group)
	defer span.End()
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
	telemetry.Within(h.tracer, ctx, out) // the notice, and the alert it may raise, stay in the event's trace
	tx.Produce(ctx, out)
	tx.Count(r.Topic, "forwarded")
	return true
}

// decideRecord decides one keyed record, or reports that it cannot be handled yet. With
// tracing on, the decision is the span of processing r: the alert or resolution it makes
// keeps that span's traceparent, which the Slack post continues.
func (h *handler) decideRecord(ctx context.Context, tx batch, p *partition, r *kgo.Record) bool {
	ctx, span := telemetry.Process(h.tracer, ctx, r, h.group)
	defer span.End()
	n, err := h.notice(r)
	if err != nil {
		return h.undecodable(ctx, tx, r, err)
	}
	if h.tracer != nil {
		n.trace = telemetry.Traceparent(ctx)
	}
	outcome := h.decide(tx, p, r, &n)
	if span.IsRecording() {
		span.SetAttributes(attribute.String("bridge.event.id", n.ID), attribute.String("bridge.outcome", outcome))
	}
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
func (h *handler) undecodable(ctx context.Context, tx batch, r *kgo.Record, err error) bool {
	if !errors.Is(err, errBadNotice) && !consumers.Undecodable(err) {
		h.log.Warn("decode failed; partition held", "topic", r.Topic, "partition", r.Partition, "err", err)
		return false
	}
	h.deadLetter(ctx, tx, r, "undecodable value: "+err.Error())
	return true
}

// decide applies a notice to its key's state as the batch left it, and returns the outcome.
// The changes are written to the state topic in this batch's transaction, and the messages
// they owe posted once it commits.
func (h *handler) decide(tx batch, p *partition, r *kgo.Record, n *notice) string {
	c := h.changesOf(p)
	e := c.entry(p, n.Key)
	if n.ReceivedAt.After(c.stream) {
		c.stream = n.ReceivedAt
	}
	outcome := "ignored"
	switch n.Type {
	case event.PostTokenExpired:
		next, alerted := expire(e.alert, e.last, n, h.cooldown)
		outcome = pick(alerted, "alerted", "suppressed")
		e.setAlert(next, alerted)
	case event.PostPublished:
		next, resolved, last := publish(e.alert, e.last, n)
		outcome = pick(resolved, "resolved", "ignored")
		e.setAlert(next, resolved)
		e.setLast(last, last.At.After(e.last.At))
	}
	if e.alertSet || e.lastSet {
		e.trace = n.trace
	}
	tx.Count(r.Topic, outcome)
	if outcome != "ignored" && outcome != "suppressed" {
		h.log.Debug("decided", "outcome", outcome, "event_id", n.ID, "source", n.Key.Source, "profile", n.Key.Profile, "platform", n.Key.Platform,
			"origin_topic", n.Origin.Topic, "origin_partition", n.Origin.Partition, "origin_offset", n.Origin.Offset)
	}
	return outcome
}

func (h *handler) changesOf(p *partition) *changes {
	c := h.pending[p]
	if c == nil {
		c = &changes{keys: map[Key]*entry{}}
		h.pending[p] = c
	}
	return c
}

// sweep marks p's forgettable keys forgotten in c, when p's stream time moved on by
// sweepEvery since the last sweep: a look at every key, so not at every batch.
func (h *handler) sweep(p *partition, c *changes) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.stream
	if c.stream.After(now) {
		now = c.stream
	}
	if now.Sub(p.swept) < h.sweepEvery {
		return
	}
	c.swept = now
	p.eachKey(c, func(k Key) {
		e := c.keys[k]
		if e == nil {
			e = &entry{alert: p.alerts[k], last: p.published[k]}
		}
		if forgettable(e.alert, e.last, p.deliveries[k], now, h.forgetAfter) {
			c.keys[k] = &entry{forgotten: true}
		}
	})
}

// write produces the records of c's keys to p's state partition: the alert and publish
// records a decision changed, or tombstones for every record of a forgotten key.
func (h *handler) write(ctx context.Context, tx batch, p *partition, c *changes) {
	for _, r := range h.records(p, c) {
		tx.Produce(ctx, r)
	}
}

// records are the state records of c's keys (a produce may block: not under p.mu).
func (h *handler) records(p *partition, c *changes) []*kgo.Record {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*kgo.Record
	var decision string // the traceparent of the decision that wrote the key's records, if traced
	add := func(k Key, kind string, v []byte) {
		r := &kgo.Record{Topic: h.state, Partition: p.id, Key: k.stateKey(kind), Value: v}
		if decision != "" {
			telemetry.Within(h.tracer, telemetry.WithRemote(context.Background(), decision), r)
		}
		out = append(out, r)
	}
	for k, e := range c.keys {
		decision = e.trace
		switch {
		case e.forgotten:
			has := [...]bool{p.alerts[k] != nil, !p.published[k].At.IsZero(), p.hasDelivery(k)}
			for i, kind := range [...]string{kindAlert, kindPublish, kindDelivery} {
				if has[i] {
					add(k, kind, nil) // a tombstone
				}
			}
		default:
			if e.alertSet {
				add(k, kindAlert, mustJSON(e.alert))
			}
			if e.lastSet {
				add(k, kindPublish, mustJSON(e.last))
			}
		}
	}
	return out
}

// reasonUndecodable is the group's one class of dead letters (the reason label of
// bridge_consumer_dead_lettered_total): a value no schema decodes.
const reasonUndecodable = "undecodable"

func (h *handler) deadLetter(ctx context.Context, tx batch, r *kgo.Record, reason string) {
	tx.Produce(ctx, consumers.DeadLetter(r, h.dlq, reason))
	tx.CountDeadLettered(reasonUndecodable)
	tx.Count(r.Topic, "dead_lettered")
	h.log.Info("dead-lettered", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "reason", reason)
}

// Ended makes the batch's decisions the committed state and starts the workers of the
// messages they owe; after an abort they are forgotten, as the records are polled again.
func (h *handler) Ended(committed bool) {
	if committed {
		for p, c := range h.pending {
			p.commit(c, h.deliver)
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
