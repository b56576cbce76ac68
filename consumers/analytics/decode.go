package analytics

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/socialbridge/bridge/bridge/event"
	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/consumers/analytics/store"
	"github.com/socialbridge/bridge/schemas"
)

// Unknown stands for a platform or profile an event does not name.
const Unknown = "unknown"

// decoder reads a value in either framing the bridge writes, chosen by its first byte:
// single-object (C3 01…) or the schema registry's (00…). Choosing by the value rather than
// by this consumer's config means a bridge and consumer configured differently still agree.
type decoder struct {
	single   *schemas.SingleObject
	registry *schemas.Registry // nil without schema_registry.url
}

// errNoRegistry: a value in the registry's framing while no registry is configured. It is
// not the record's fault, so the batch waits (and says why) rather than skipping it.
var errNoRegistry = errors.New("analytics: a value is in the schema registry's wire format but schema_registry.url is not set")

func newDecoder(ctx context.Context, cfg config.Config) (decoder, error) {
	single, err := schemas.NewSingleObject()
	if err != nil {
		return decoder{}, err
	}
	d := decoder{single: single}
	r := cfg.SchemaRegistry
	if r.URL == "" {
		return d, nil
	}
	opts := []sr.ClientOpt{sr.URLs(r.URL)}
	if r.Username != "" {
		opts = append(opts, sr.BasicAuth(r.Username, r.Password))
	}
	cl, err := sr.NewClient(opts...)
	if err != nil {
		return decoder{}, fmt.Errorf("analytics: schema registry: %w", err)
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if d.registry, err = schemas.NewRegistry(rctx, cl, cfg.Kafka.TopicPrefix); err != nil {
		return decoder{}, fmt.Errorf("analytics: schema registry at %s: %w", r.URL, err)
	}
	return d, nil
}

func (d decoder) decode(value []byte, ev *event.Event) error {
	if len(value) > 0 && value[0] == 0 {
		if d.registry == nil {
			return errNoRegistry
		}
		return d.registry.Decode(value, ev)
	}
	return d.single.Decode(value, ev)
}

// permanent reports whether a decoding error is the value's own: it will never decode.
func permanent(err error) bool {
	return errors.Is(err, schemas.ErrMalformed) || errors.Is(err, schemas.ErrUnknownSchema) || errors.Is(err, schemas.ErrUnknownType)
}

// decodeAll turns records into what the store counts. A value that can never be decoded is
// logged and counted as Ignored (its offset still moves); any other failure, such as the
// registry being unreachable, fails the batch so it is tried again.
func (s *Service) decodeAll(recs []*kgo.Record) ([]store.Record, error) {
	out := make([]store.Record, len(recs))
	var ev event.Event
	for i, r := range recs {
		out[i] = store.Record{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset}
		err := s.decoder.decode(r.Value, &ev)
		switch {
		case err == nil:
			fill(&out[i], &ev)
		case permanent(err):
			s.metrics.undecodable.Inc()
			s.log.Warn("analytics: record ignored: its value cannot be decoded", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "err", err)
		default:
			return nil, err
		}
	}
	return out, nil
}

// fill sets what r counts from ev.
func fill(r *store.Record, ev *event.Event) {
	r.Kind = kindOf(ev.Type)
	r.OccurredAt = ev.OccurredAt
	r.Platform = orUnknown(ev.Platform)
	r.Profile = orUnknown(ev.ProfileName)
	if r.Kind == store.Published && ev.ScheduledAt != nil && ev.PublishedAt != nil {
		r.DelayMs = ev.PublishedAt.Sub(*ev.ScheduledAt).Milliseconds()
		r.HasDelay = true
	}
}

func kindOf(eventType string) store.Kind {
	switch eventType {
	case event.PostPublished:
		return store.Published
	case event.PostFailed:
		return store.Failed
	case event.PostTokenExpired:
		return store.TokenExpired
	case event.PostRetry:
		return store.Retry
	}
	return store.Ignored
}

func orUnknown(s *string) string {
	if s == nil || *s == "" {
		return Unknown
	}
	return *s
}
