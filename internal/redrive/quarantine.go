package redrive

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/bridge/dedup"
	"github.com/socialbridge/bridge/bridge/failure"
	"github.com/socialbridge/bridge/bridge/providers"
	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/consumers"
	"github.com/socialbridge/bridge/event"
)

// ReplayedTopic is the compacted topic of the marks of the quarantined deliveries that were
// replayed, {prefix}deadletter.replayed; ReplayTxnID is the transactional id every replay
// of the prefix's quarantine takes (see DLQ.Redrive for why).
func ReplayedTopic(prefix string) string { return event.QuarantineTopic(prefix) + ".replayed" }

// ReplayTxnID: see ReplayedTopic.
func ReplayTxnID(prefix string) string { return event.QuarantineTopic(prefix) + ".replay" }

// HeaderRequestPrefix starts the name of a quarantined record's header that carries a
// header of the request (in lower case after it: "request-header-webhook-id"). Replay hands
// these to the preset as the request's headers: some presets read the event id or type
// from one (standard-webhooks' webhook-id, codivupload's X-CodivUpload-Event, the hmac
// preset's header: locations), and the ingress keeps those a preset names
// (providers.HeaderReader) when it quarantines a delivery.
const HeaderRequestPrefix = providers.RequestHeaderPrefix

// Headers a replay adds to each event record it produces: the quarantined record it came
// from.
const (
	HeaderReplayedFromPartition = "replayed-from-partition"
	HeaderReplayedFromOffset    = "replayed-from-offset"
)

// Delivery is one quarantined delivery as `bridge quarantine list --json` prints it: where
// it is, what the ingress knew of it (source, provider, why it was quarantined, when it
// came, its size), whether it was replayed, and what today's presets make of it: the
// events it normalizes to, or why it still does not normalize.
type Delivery struct {
	Partition  int32     `json:"partition"`
	Offset     int64     `json:"offset"`
	Source     string    `json:"source"`
	Provider   string    `json:"provider"`
	Reason     string    `json:"reason"`
	ReceivedAt time.Time `json:"received_at"`
	Bytes      int       `json:"bytes"`
	Replayed   bool      `json:"replayed"`
	Normalizes bool      `json:"normalizes"`
	Events     []Normal  `json:"events"`
	Problem    string    `json:"problem,omitempty"`

	record *kgo.Record
	src    *source
	evs    []event.Event
	// key is the key the ingress deduplicated the delivery on when not its event id (its
	// dedup.KeyHeader: a content-keyed source's digest), else ""; keys[i] is evs[i]'s
	// (dedup.EventKey).
	key  string
	keys []string
}

// Normal is an event a quarantined delivery normalizes to today.
type Normal struct {
	EventID   string `json:"event_id"`
	EventType string `json:"event_type"`
}

// source is a configured source with today's preset.
type source struct {
	name, provider string
	preset         providers.Preset
}

// Quarantine reads the quarantine topic, {prefix}deadletter, and replays its deliveries.
type Quarantine struct {
	cfg     config.Config
	prefix  string
	sources map[string]*source
	log     *slog.Logger
	now     func() time.Time
	batch   int // deliveries per transaction
}

// NewQuarantine returns the quarantine of cfg, with the presets of its sources as
// configured today. It reads cfg's kafka, schema_registry, dedup and sources sections.
func NewQuarantine(cfg config.Config, log *slog.Logger) (*Quarantine, error) {
	q := &Quarantine{cfg: cfg, prefix: cfg.Kafka.TopicPrefix, sources: map[string]*source{}, log: log, now: time.Now, batch: defaultBatch}
	for _, s := range cfg.Sources {
		p, err := providers.New(s.Provider, s.Settings())
		if err != nil {
			return nil, fmt.Errorf("source %s: %w", s.Name, err)
		}
		q.sources[s.Name] = &source{name: s.Name, provider: s.Provider, preset: p}
	}
	return q, nil
}

// Topic is the quarantine topic's name.
func (q *Quarantine) Topic() string { return event.QuarantineTopic(q.prefix) }

// List returns the quarantined deliveries f matches (by the event ids they normalize to
// today, and their age), by partition and offset.
func (q *Quarantine) List(ctx context.Context, f Filter) ([]Delivery, error) {
	c, err := dial(q.cfg.Kafka)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	ds, _, err := q.read(ctx, c, nil)
	if err != nil {
		return nil, err
	}
	now := q.now()
	return slices.DeleteFunc(ds, func(d Delivery) bool { return !f.matchDelivery(&d, now) }), nil
}

func (f Filter) matchDelivery(d *Delivery, now time.Time) bool {
	if len(f.IDs) > 0 && !slices.ContainsFunc(d.Events, func(n Normal) bool { return slices.Contains(f.IDs, n.EventID) }) {
		return false
	}
	return f.Since == 0 || !d.ReceivedAt.Before(now.Add(-f.Since))
}

// read returns every quarantined delivery, normalized with today's presets and marked
// replayed or not, and the topic's id; none when the topic does not exist. A delivery keeps
// its record and events (for a replay) only when hold says so.
func (q *Quarantine) read(ctx context.Context, c *cluster, hold func(*Delivery) bool) ([]Delivery, kadm.TopicID, error) {
	var ds []Delivery
	id, err := readMarked(ctx, c, q.Topic(), ReplayedTopic(q.prefix), ReplayTxnID(q.prefix), func(r *kgo.Record, marked bool) {
		d := q.delivery(r)
		d.Replayed = marked
		if hold == nil || !hold(&d) {
			d.record, d.evs, d.keys = nil, nil, nil
		}
		ds = append(ds, d)
	})
	if err != nil {
		return nil, id, err
	}
	sortByPlace(ds, func(d Delivery) mark { return mark{d.Partition, d.Offset} })
	return ds, id, nil
}

// delivery reads a quarantined record and normalizes it again.
func (q *Quarantine) delivery(r *kgo.Record) Delivery {
	d := Delivery{Partition: r.Partition, Offset: r.Offset, Bytes: len(r.Value), ReceivedAt: r.Timestamp.UTC(), record: r, Events: []Normal{}}
	d.Source, _ = consumers.Header(r, "source")
	d.Provider, _ = consumers.Header(r, "provider")
	d.Reason, _ = consumers.Header(r, "reason")
	d.key, _ = consumers.Header(r, dedup.KeyHeader)
	if v, ok := consumers.Header(r, "received-at"); ok {
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			d.ReceivedAt = t.UTC()
		}
	}
	evs, keys, err := q.normalize(&d)
	if err != nil {
		d.Problem = err.Error()
		return d
	}
	d.evs, d.keys, d.Normalizes = evs, keys, true
	for _, ev := range evs {
		d.Events = append(d.Events, Normal{EventID: ev.ID, EventType: ev.Type})
	}
	return d
}

// normalize maps the delivery with its source's preset as configured today, as the
// ingress would (Split for a preset whose deliveries carry several events), and fills the
// envelope: source, provider, the original arrival, and the body as raw payload. Parts the
// preset ignores become no event; a delivery of none normalizes to none. Each event's
// dedup key is the ingress's, from the delivery's key and the event's place among all the
// parts, the ignored ones counted.
func (q *Quarantine) normalize(d *Delivery) ([]event.Event, []string, error) {
	src, ok := q.sources[d.Source]
	switch {
	case !ok:
		return nil, nil, fmt.Errorf("source %q is not in the configuration", d.Source)
	case d.Provider != "" && d.Provider != src.provider:
		return nil, nil, fmt.Errorf("source %q now uses the %s preset; the delivery came through %s", d.Source, src.provider, d.Provider)
	}
	d.src = src
	parts, err := split(src.preset, requestHeaders{d.record}, d.record.Value)
	if err != nil {
		return nil, nil, problem(err)
	}
	var evs []event.Event
	var keys []string
	for i, p := range parts {
		if p.Ignored == "" {
			q.envelope(&p.Event, d)
			evs, keys = append(evs, p.Event), append(keys, dedup.EventKey(d.key, p.Event.ID, i, len(parts)))
		}
	}
	return evs, keys, nil
}

// split is p's parts of a delivery: Split's for a Splitter, else the one event Normalize
// makes.
func split(p providers.Preset, h providers.Headers, body []byte) ([]providers.Part, error) {
	if sp, ok := p.(providers.Splitter); ok {
		return sp.Split(h, body)
	}
	var part providers.Part
	if err := p.Normalize(h, body, &part.Event); err != nil {
		return nil, err
	}
	return []providers.Part{part}, nil
}

// envelope sets what the bridge knew of ev when the delivery came, as the ingress does.
func (q *Quarantine) envelope(ev *event.Event, d *Delivery) {
	ev.Source, ev.Provider, ev.ReceivedAt = d.src.name, d.src.provider, d.ReceivedAt
	if ev.Raw == nil {
		ev.Raw = d.record.Value
	}
	if ev.OccurredAt.IsZero() {
		ev.OccurredAt = d.ReceivedAt
	}
}

// problem is why a delivery does not normalize: the preset's reason.
func problem(err error) error {
	var fe *failure.Error
	if errors.As(err, &fe) {
		return errors.New(fe.Reason)
	}
	return err
}

// requestHeaders are the request headers a quarantined record kept (HeaderRequestPrefix).
type requestHeaders struct{ r *kgo.Record }

func (h requestHeaders) Peek(name string) []byte {
	v, ok := consumers.Header(h.r, HeaderRequestPrefix+strings.ToLower(name))
	if !ok {
		return nil
	}
	return []byte(v)
}
