package ingress

import (
	"context"
	"fmt"
	"time"

	"github.com/socialbridge/bridge/event"
)

// Emit takes an event that did not come by HTTP (a polled source's result) through the
// same steps as a delivery's: the envelope, with raw as its raw payload, dedup by (source,
// event id), encode, produce, and the wait for Kafka's acknowledgement. It reports whether
// the event was a duplicate. An error is a failure.Error, as a request's would be.
func (s *Server) Emit(ctx context.Context, source string, ev *event.Event, raw []byte, now time.Time) (dup bool, err error) {
	src, ok := s.sources[source]
	if !ok {
		return false, fmt.Errorf("ingress: no source %q", source)
	}
	s.envelope(ev, src, raw, now)
	o, err := s.put(ctx, src, ev, nil)
	return o.dup, err
}

// Quarantine keeps a result of a polled source that cannot be normalized, as the quarantine
// of a delivery does: the raw bytes go to the dead-letter topic with reason in a header.
func (s *Server) Quarantine(source string, raw []byte, reason string, now time.Time) error {
	src, ok := s.sources[source]
	if !ok {
		return fmt.Errorf("ingress: no source %q", source)
	}
	return s.deadLetter(src, raw, now, reason, nil, []byte("application/json"))
}
