package analytics

import (
	"errors"
	"runtime"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/consumers"
	"github.com/socialbridge/bridge/consumers/analytics/store"
	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/schemas"
)

// Unknown stands for a platform or profile an event does not name.
const Unknown = "unknown"

// errNoRegistry: a value in the registry's framing while no registry is configured. The
// shared decoder calls that an unknown schema, which other groups dead-letter; here it would
// be lost from the counts for good, and it is the configuration's fault, not the record's,
// so the batch waits (and says why) rather than skipping it.
var errNoRegistry = errors.New("analytics: a value is in the schema registry's wire format but schema_registry.url is not set")

// decodeChunk is the fewest records worth a goroutine of their own.
const decodeChunk = 500

// decodeAll turns recs into what the store counts, in out (as long), on every CPU. A value
// that can never be decoded is logged and counted as Ignored (its offset still moves); any
// other failure, such as the registry being unreachable, fails the poll so it is tried again.
func (s *Service) decodeAll(recs []*kgo.Record, out []store.Record) error {
	workers := min(runtime.GOMAXPROCS(0), (len(recs)+decodeChunk-1)/decodeChunk)
	per := (len(recs) + workers - 1) / workers
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := w*per, min(len(recs), (w+1)*per)
		wg.Go(func() { errs[w] = s.decodeInto(recs[lo:hi], out[lo:hi]) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// decodeInto reads only what is counted of each value (schemas.Outcome): a few times
// quicker than the whole event with its raw payload.
func (s *Service) decodeInto(recs []*kgo.Record, out []store.Record) error {
	var o schemas.Outcome
	for i, r := range recs {
		out[i] = store.Record{Offset: r.Offset}
		if len(r.Value) > 0 && r.Value[0] == 0 && !s.registry {
			return errNoRegistry
		}
		err := s.decoder.DecodeOutcome(r.Value, &o)
		switch {
		case err == nil:
			fill(&out[i], &o)
		case consumers.Undecodable(err):
			s.metrics.undecodable.Inc()
			s.log.Warn("analytics: record ignored: its value cannot be decoded", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "err", err)
		default:
			return err
		}
	}
	return nil
}

// fill sets what r counts from o.
func fill(r *store.Record, o *schemas.Outcome) {
	r.Kind = kindOf(o.Type)
	r.OccurredAt = o.OccurredAt
	r.Platform = orUnknown(o.Platform)
	r.Profile = orUnknown(o.ProfileName)
	if r.Kind == store.Published && o.ScheduledAt != nil && o.PublishedAt != nil {
		r.DelayMs = o.PublishedAt.Sub(*o.ScheduledAt).Milliseconds()
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
