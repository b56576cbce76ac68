package ingress

import (
	"context"
	"errors"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/bridge/dedup"
	"github.com/socialbridge/bridge/bridge/failure"
	"github.com/socialbridge/bridge/bridge/spool"
	"github.com/socialbridge/bridge/event"
)

// Spooler keeps, on this replica's disk, the records of the sources that spool while Kafka
// cannot take them (bridge/spool.Spool documents each method's contract). An append that
// returns nil is durable: the delivery is answered "spooled".
type Spooler interface {
	Holding(source string) bool
	Has(source, key string) bool
	Append(rec *kgo.Record) error
	AppendPending(rec *kgo.Record) (resolve func(error), err error)
	AppendUnverified(rec *kgo.Record) error
	KafkaDown()
}

// putSpooling is putAs for a source that spools. Where a delivery goes:
//
//   - its (source, key) is in the spool, not yet drained: a duplicate, whatever the dedup store
//     says (it may have forgotten across a restart);
//   - the dedup store cannot be asked (rebuilding, unreachable): spooled unverified, to be
//     reserved before it is produced;
//   - Kafka is known to be down, or the source has records spooled (a new one must not overtake
//     them): spooled at once;
//   - otherwise produced; if Kafka does not acknowledge it within the produce timeout,
//     spooled while franz-go still holds it, the spool waiting for franz-go's outcome.
//
// A spool that is full (or cannot write) makes the delivery go on as without one: produced if
// Kafka takes it, else 503.
func (s *Server) putSpooling(ctx context.Context, src *Source, ev *event.Event, key string, traceparent []byte) (outcome, error) {
	if s.spool.Has(src.Name, key) {
		s.metrics.dedupHits.WithLabelValues(src.Name).Inc()
		return outcome{dup: true}, nil
	}
	dup, done, rerr := s.reserve(ctx, src, key, ev.ReceivedAt)
	if dup {
		return outcome{dup: true}, nil
	}
	rec, err := s.keyedRecord(ev, key, traceparent)
	if err != nil {
		if done != nil {
			done(false)
		}
		return outcome{}, err
	}
	if rerr != nil {
		return s.spoolUnverified(src, rec, rerr)
	}
	if s.spool.Holding(src.Name) {
		if o, err := s.spoolHeld(src, rec, done); err == nil {
			return o, nil
		}
	}
	return s.produceOrSpool(src, rec, done)
}

// keyedRecord is the record of ev, with its dedup key in a header when that is not its id.
func (s *Server) keyedRecord(ev *event.Event, key string, traceparent []byte) (*kgo.Record, error) {
	rec, err := s.record(ev, traceparent)
	if err == nil && key != ev.ID {
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: dedup.KeyHeader, Value: []byte(key)})
	}
	return rec, err
}

// spoolUnverified spools rec without a dedup reservation, which the store could not give
// (cause); if the spool cannot take it either, cause answers the delivery.
func (s *Server) spoolUnverified(src *Source, rec *kgo.Record, cause error) (outcome, error) {
	err := s.spool.AppendUnverified(rec)
	switch {
	case err == nil:
		return s.spooled(src, rec), nil
	case errors.Is(err, spool.ErrDuplicate):
		s.metrics.dedupHits.WithLabelValues(src.Name).Inc()
		return outcome{dup: true}, nil
	}
	s.log.Warn("the spool cannot take a delivery", "source", src.Name, "err", err)
	return outcome{}, cause
}

// spoolHeld spools rec behind what the source has spooled, or while Kafka is down. An error
// leaves the reservation with the caller.
func (s *Server) spoolHeld(src *Source, rec *kgo.Record, done func(bool)) (outcome, error) {
	err := s.spool.Append(rec)
	switch {
	case err == nil:
		done(true)
		return s.spooled(src, rec), nil
	case errors.Is(err, spool.ErrDuplicate):
		// Spooled by a delivery that had no reservation: that entry is reserved before it is
		// produced, so the id must not be marked seen here (it would drop it as a duplicate).
		done(false)
		s.metrics.dedupHits.WithLabelValues(src.Name).Inc()
		return outcome{dup: true}, nil
	}
	s.log.Warn("the spool cannot take a delivery; producing it as without a spool", "source", src.Name, "err", err)
	return outcome{}, err
}

// produceOrSpool produces rec; if Kafka does not acknowledge it in time, rec is spooled while
// franz-go holds it, and franz-go's outcome goes to the spool instead of the reservation.
func (s *Server) produceOrSpool(src *Source, rec *kgo.Record, done func(bool)) (outcome, error) {
	a := &attempt{done: done}
	err := s.produce(rec, a.settle)
	if err == nil || failure.KindOf(err) != failure.Unavailable {
		a.decide(nil)
		return outcome{rec: rec}, err
	}
	s.spool.KafkaDown()
	resolve, serr := s.spool.AppendPending(rec)
	if serr != nil {
		s.log.Warn("the spool cannot take a delivery", "source", src.Name, "err", serr)
		a.decide(nil)
		return outcome{}, err
	}
	a.decide(resolve)
	done(true)
	return s.spooled(src, rec), nil
}

func (s *Server) spooled(src *Source, rec *kgo.Record) outcome {
	s.metrics.spooled.WithLabelValues(src.Name).Inc()
	return outcome{rec: rec, spooled: true}
}

// attempt routes franz-go's outcome of a record of a spooling source, which may come before
// or after the request has decided where it goes: to the dedup reservation (decide(nil)), or
// to the spool (decide(resolve)) once the record is spooled.
type attempt struct {
	mu      sync.Mutex
	done    func(bool)
	settled bool
	err     error
	decided bool
	resolve func(error)
}

func (a *attempt) settle(err error) {
	a.mu.Lock()
	if !a.decided {
		a.settled, a.err = true, err
		a.mu.Unlock()
		return
	}
	a.mu.Unlock()
	a.hand(err)
}

func (a *attempt) decide(resolve func(error)) {
	a.mu.Lock()
	a.decided, a.resolve = true, resolve
	settled, err := a.settled, a.err
	a.mu.Unlock()
	if settled {
		a.hand(err)
	}
}

func (a *attempt) hand(err error) {
	if a.resolve != nil {
		a.resolve(err)
	} else {
		a.done(err == nil)
	}
}
