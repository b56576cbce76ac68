package redrive

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/bridge/dedup"
	"github.com/socialbridge/bridge/consumers"
	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/internal/kafkaconn"
	"github.com/socialbridge/bridge/internal/topics"
	"github.com/socialbridge/bridge/schemas"
)

// ReplayResult is what a replay did, as `bridge quarantine replay` prints it: the chosen
// deliveries whose events it produced, and those it did not (replayed before, still not
// normalizing, carrying no event, or only events already accepted).
type ReplayResult struct {
	Replayed int `json:"replayed"`
	Skipped  int `json:"skipped"`
}

// ReplayStep is what a replay does, or would do, with one chosen delivery: "replay" (its
// events in Produce; Duplicates, already accepted, are left) or "skip", with the reason.
type ReplayStep struct {
	Partition  int32    `json:"partition"`
	Offset     int64    `json:"offset"`
	Source     string   `json:"source"`
	Action     string   `json:"action"`
	Produce    []string `json:"produce,omitempty"`
	Duplicates []string `json:"duplicates,omitempty"`
	Reason     string   `json:"reason,omitempty"`

	picked []int // the indices of the delivery's events in Produce
}

// Replay normalizes each quarantined delivery f matches (by the event ids it normalizes to
// today, and its age) with today's presets, and produces its events to their topics,
// deduplicated as the ingress deduplicates a delivery (see deduper): by (source, key), the
// key being the event id, or, for a content-keyed source, the digest of what is signed that
// the ingress kept with the delivery (dedup.EventKey). It does so in transactions that also
// mark the delivery replayed. With dryRun it only reads and says what it would do.
//
// Each delivery is replayed once, under the same protocol as DLQ.Redrive: the run takes
// ReplayTxnID before it reads the marks. A key that two quarantined deliveries share is
// produced once. IDs in f that no delivery normalizes to are an error, before anything is
// produced.
//
// A replayed event keeps its original received_at (and received-at header); its record's
// timestamp is the replay's, when the bridge accepted it, so that dedup windows and
// retention count from then.
func (q *Quarantine) Replay(ctx context.Context, f Filter, dryRun bool) (ReplayResult, []ReplayStep, error) {
	c, err := dial(q.cfg.Kafka)
	if err != nil {
		return ReplayResult{}, nil, err
	}
	defer c.Close()
	var tx *kgo.Client
	if !dryRun {
		if err := c.ensure(ctx, topics.Topic{Name: ReplayedTopic(q.prefix), Compact: true}); err != nil {
			return ReplayResult{}, nil, err
		}
		if tx, err = hold(ctx, c.opts, ReplayTxnID(q.prefix)); err != nil {
			return ReplayResult{}, nil, err
		}
		defer tx.Close()
	}
	now := q.now()
	ds, id, err := q.read(ctx, c, func(d *Delivery) bool { return !d.Replayed && d.Normalizes && f.matchDelivery(d, now) })
	if err != nil {
		return ReplayResult{}, nil, err
	}
	if testHookAfterRead != nil {
		testHookAfterRead()
	}
	r, err := q.newReplay(ctx, c, tx, id, ds, f, now)
	if err != nil {
		return ReplayResult{}, nil, err
	}
	defer r.close()
	err = r.run(ctx)
	slices.SortFunc(r.steps, func(a, b ReplayStep) int {
		return cmp.Or(cmp.Compare(a.Partition, b.Partition), cmp.Compare(a.Offset, b.Offset))
	})
	return r.res, r.steps, err
}

// replay is one run of Replay, from the deliveries read on.
type replay struct {
	q       *Quarantine
	tx      *kgo.Client // nil in a dry run
	id      kadm.TopicID
	chosen  []*Delivery
	dedup   *deduper
	enc     schemas.Encoder
	now     time.Time
	claimed map[[2]string]bool // (source, dedup key) of the events of this run
	res     ReplayResult
	steps   []ReplayStep
}

func (q *Quarantine) newReplay(ctx context.Context, c *cluster, tx *kgo.Client, id kadm.TopicID, ds []Delivery, f Filter, now time.Time) (*replay, error) {
	if err := missingEvents(ds, f.IDs, q.Topic()); err != nil {
		return nil, err
	}
	r := &replay{q: q, tx: tx, id: id, now: now, claimed: map[[2]string]bool{}}
	types, ownTypes := r.choose(ds, f)
	var err error
	if tx != nil && len(types) > 0 {
		ts := make([]topics.Topic, len(types))
		for i, t := range types {
			ts[i] = topics.Topic{Name: event.Topic(q.prefix, t)}
		}
		if err = c.ensure(ctx, ts...); err != nil {
			return nil, err
		}
		if r.enc, err = q.encoder(ctx); err != nil {
			return nil, err
		}
	}
	if r.dedup, err = newDeduper(ctx, q.cfg, c, types, ownTypes, r.now); err != nil {
		return nil, err
	}
	return r, nil
}

// choose keeps the deliveries f matches that may be replayed, adds a step for each of the
// others, and returns the event types of the kept ones, and of those of their events that
// are deduplicated on their delivery's own key (see ownKey).
func (r *replay) choose(ds []Delivery, f Filter) (types, ownTypes []string) {
	for i := range ds {
		d := &ds[i]
		if !f.matchDelivery(d, r.now) {
			continue
		}
		switch {
		case d.Replayed:
			r.skip(d, "replayed before")
		case !d.Normalizes:
			r.skip(d, "does not normalize: "+d.Problem)
		default:
			r.chosen = append(r.chosen, d)
			for i, ev := range d.evs {
				types = addType(types, ev.Type)
				if ownKey(d, i) {
					ownTypes = addType(ownTypes, ev.Type)
				}
			}
		}
	}
	return types, ownTypes
}

func addType(types []string, t string) []string {
	if slices.Contains(types, t) {
		return types
	}
	return append(types, t)
}

// ownKey says whether d's i-th event is deduplicated on the key of d itself: a content-keyed
// delivery of one event. The ingress claimed that key when it quarantined d, so that a
// resend of d is a duplicate; a dedup store shared with it (Redis) has it seen for that
// reason alone (see deduper).
func ownKey(d *Delivery, i int) bool { return d.key != "" && d.keys[i] == d.key }

func (r *replay) skip(d *Delivery, reason string) {
	r.res.Skipped++
	r.steps = append(r.steps, ReplayStep{Partition: d.Partition, Offset: d.Offset, Source: d.Source, Action: "skip", Reason: reason})
}

// missingEvents names the ids that no delivery normalizes to.
func missingEvents(ds []Delivery, ids []string, topic string) error {
	var gone []string
	for _, id := range ids {
		if !slices.ContainsFunc(ds, func(d Delivery) bool {
			return slices.ContainsFunc(d.Events, func(n Normal) bool { return n.EventID == id })
		}) {
			gone = append(gone, strconv.Quote(id))
		}
	}
	if len(gone) > 0 {
		return fmt.Errorf("no delivery in %s normalizes to event id %s: nothing was replayed", topic, strings.Join(gone, ", "))
	}
	return nil
}

// run replays the chosen deliveries in transactions of q.batch, or, in a dry run, says what
// it would do.
func (r *replay) run(ctx context.Context) error {
	for batch := range slices.Chunk(r.chosen, r.q.batch) {
		if err := r.runBatch(ctx, batch); err != nil {
			return fmt.Errorf("replay: %w", err)
		}
	}
	return nil
}

// runBatch claims the events of batch in the dedup store, produces the new ones and the
// deliveries' marks in one transaction, and settles the claims with its outcome.
func (r *replay) runBatch(ctx context.Context, batch []*Delivery) error {
	var claims []func(bool)
	settle := func(ok bool) {
		for _, done := range claims {
			done(ok)
		}
	}
	steps := make([]ReplayStep, len(batch))
	for i, d := range batch {
		s, done, err := r.plan(ctx, d)
		if err != nil {
			settle(false)
			return err
		}
		steps[i], claims = s, append(claims, done...)
	}
	if r.tx != nil {
		if err := transact(ctx, r.tx, func() error { return r.produce(ctx, batch, steps) }); err != nil {
			settle(false)
			return err
		}
		r.q.log.Info("replayed", "deliveries", len(batch))
	}
	settle(true)
	for _, s := range steps {
		if s.Action == "replay" {
			r.res.Replayed++
		} else {
			r.res.Skipped++
		}
	}
	r.steps = append(r.steps, steps...)
	return nil
}

// plan decides which of d's events to produce: not those accepted within the window, nor
// one this run has already claimed. Outside a dry run each is claimed in the dedup store;
// the claims' done functions are returned.
func (r *replay) plan(ctx context.Context, d *Delivery) (ReplayStep, []func(bool), error) {
	s := ReplayStep{Partition: d.Partition, Offset: d.Offset, Source: d.Source, Action: "replay"}
	var claims []func(bool)
	for i, ev := range d.evs {
		k := [2]string{ev.Source, d.keys[i]}
		dup := r.claimed[k]
		if !dup {
			var done func(bool)
			var err error
			if r.tx == nil {
				dup, err = r.dedup.seen(ctx, ev.Source, k[1], ownKey(d, i), r.now)
			} else {
				dup, done, err = r.dedup.reserve(ctx, ev.Source, k[1], ownKey(d, i), r.now)
			}
			if err != nil {
				return s, claims, fmt.Errorf("dedup of event %q: %w", ev.ID, err)
			}
			if done != nil {
				claims = append(claims, done)
			}
		}
		r.claimed[k] = true
		if dup {
			s.Duplicates = append(s.Duplicates, ev.ID)
		} else {
			s.Produce, s.picked = append(s.Produce, ev.ID), append(s.picked, i)
		}
	}
	switch {
	case len(d.evs) == 0:
		s.Action, s.Reason = "skip", "the delivery carries no event"
	case len(s.Produce) == 0:
		s.Action, s.Reason = "skip", "already accepted within the dedup window"
	}
	return s, claims, nil
}

// produce produces, in the open transaction, the events the steps name, then a mark of
// each delivery saying what became of it.
func (r *replay) produce(ctx context.Context, batch []*Delivery, steps []ReplayStep) error {
	var evs []*kgo.Record
	of := make([][]*kgo.Record, len(batch))
	for i, d := range batch {
		for _, j := range steps[i].picked {
			rec, err := r.record(&d.evs[j], d.keys[j], d)
			if err != nil {
				return err
			}
			of[i] = append(of[i], rec)
			evs = append(evs, rec)
		}
	}
	if err := produceAll(ctx, r.tx, evs); err != nil {
		return err
	}
	marks := make([]*kgo.Record, len(batch))
	for i, d := range batch {
		marks[i] = &kgo.Record{Topic: ReplayedTopic(r.q.prefix), Key: markKey(r.id, d.Partition, d.Offset), Value: r.markValue(steps[i], of[i])}
	}
	return produceAll(ctx, r.tx, marks)
}

// record is the record of the event, deduplicated on key, as the ingress makes it, with the
// replay's headers.
func (r *replay) record(ev *event.Event, key string, d *Delivery) (*kgo.Record, error) {
	v, err := r.enc.Encode(make([]byte, 0, len(ev.Raw)+512), ev)
	if err != nil {
		return nil, fmt.Errorf("encode event %q: %w", ev.ID, err)
	}
	h := []kgo.RecordHeader{
		{Key: "event-type", Value: []byte(ev.Type)},
		{Key: "source", Value: []byte(ev.Source)},
		{Key: "provider", Value: []byte(ev.Provider)},
		{Key: "received-at", Value: []byte(ev.ReceivedAt.UTC().Format(time.RFC3339Nano))},
	}
	if tp, ok := consumers.Header(d.record, "traceparent"); ok && tp != "" {
		h = append(h, kgo.RecordHeader{Key: "traceparent", Value: []byte(tp)})
	}
	// A key other than the id, as the ingress puts it on the event record, so that a bridge's
	// rebuild (and the next replay) knows the event by it.
	if key != ev.ID {
		h = append(h, kgo.RecordHeader{Key: dedup.KeyHeader, Value: []byte(key)})
	}
	h = append(h,
		kgo.RecordHeader{Key: HeaderReplayedFromPartition, Value: []byte(strconv.Itoa(int(d.Partition)))},
		kgo.RecordHeader{Key: HeaderReplayedFromOffset, Value: []byte(strconv.FormatInt(d.Offset, 10))})
	return &kgo.Record{Topic: event.Topic(r.q.prefix, ev.Type), Key: []byte(ev.ID), Value: v, Timestamp: r.now, Headers: h}, nil
}

// replayMark is the value of a replay's mark: what became of the delivery, and where each
// event it produced landed.
type replayMark struct {
	Outcome    string        `json:"outcome"` // replayed, duplicate (every event accepted before), empty (no event)
	At         time.Time     `json:"replayed_at"`
	Events     []markedEvent `json:"events,omitempty"`
	Duplicates []string      `json:"duplicates,omitempty"`
}

type markedEvent struct {
	EventID   string `json:"event_id"`
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
}

func (r *replay) markValue(s ReplayStep, produced []*kgo.Record) []byte {
	m := replayMark{Outcome: "replayed", At: r.now.UTC(), Duplicates: s.Duplicates}
	switch {
	case len(s.Produce) == 0 && len(s.Duplicates) == 0:
		m.Outcome = "empty"
	case len(s.Produce) == 0:
		m.Outcome = "duplicate"
	}
	for _, rec := range produced {
		m.Events = append(m.Events, markedEvent{EventID: string(rec.Key), Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset})
	}
	b, _ := json.Marshal(m)
	return b
}

func (r *replay) close() { _ = r.dedup.close(context.Background()) }

// encoder is the ingress's encoder: the registry's when one is configured, else Avro
// single-object encoding.
func (q *Quarantine) encoder(ctx context.Context) (schemas.Encoder, error) {
	reg := q.cfg.SchemaRegistry
	if reg.URL == "" {
		return schemas.NewSingleObject()
	}
	rc, err := kafkaconn.Registry(reg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, answerTimeout)
	defer cancel()
	enc, err := schemas.NewRegistry(ctx, rc, q.prefix, schemas.RegistryOptions{LookUp: !reg.Register})
	if err != nil {
		base, _, _ := reg.Endpoint()
		return nil, fmt.Errorf("schema registry at %s: %w", base, err)
	}
	return enc, nil
}
