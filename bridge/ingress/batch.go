package ingress

import (
	"cmp"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/socialbridge/bridge/bridge/dedup"
	"github.com/socialbridge/bridge/bridge/failure"
	"github.com/socialbridge/bridge/bridge/providers"
)

// split is the request path of a preset whose deliveries carry any number of events. A
// delivery of one event is answered as any other; one of none (Postiz's empty list, a
// change no canonical type matches) is answered 200 "ignored" and produces nothing; one of
// several produces each event as its own record and lists each outcome.
//
// key, when not "", is the delivery's dedup key (a content-keyed source's): its one event, or
// its being ignored, is deduplicated on it; several events on it and their index.
func (s *Server) split(c *fiber.Ctx, src *Source, sp providers.Splitter, body []byte, now time.Time, key string) error {
	parts, err := sp.Split(&c.Request().Header, body)
	if err != nil {
		if failure.KindOf(err) != failure.Unnormalizable {
			return err
		}
		return s.quarantine(c, src, body, now, err, key)
	}
	for i := range parts {
		if parts[i].Ignored == "" {
			s.envelope(&parts[i].Event, src, body, now)
		}
	}
	switch {
	case len(parts) == 0:
		return s.ignore(c, src, "the delivery carries no event", key, now)
	case len(parts) == 1 && parts[0].Ignored != "":
		return s.ignore(c, src, parts[0].Ignored, key, now)
	case len(parts) == 1:
		return s.accept(c, src, &parts[0].Event, key)
	}
	return s.acceptAll(c, src, parts, key)
}

// ignore answers a delivery that carries no event to produce. With a key, it is remembered
// as seen (nothing is produced, so only the running store remembers it), so that a resend
// with other unsigned headers, which might map it to an event, is a duplicate.
func (s *Server) ignore(c *fiber.Ctx, src *Source, reason, key string, now time.Time) error {
	if key != "" {
		dup, done, err := s.reserve(c.UserContext(), src, key, now)
		if err != nil {
			return err
		}
		if dup {
			return s.answer(c, src, fiber.StatusOK, duplicateAnswer(key))
		}
		done(true)
	}
	s.metrics.ignored.WithLabelValues(src.Name).Inc()
	return s.answer(c, src, fiber.StatusOK, ignoredAnswer(reason))
}

// acceptAll produces the events of parts at once, each deduplicated on its own. If Kafka
// does not acknowledge them all, the delivery is answered 503, so that the provider sends
// it again: the events acknowledged are remembered, and the retry produces only the rest.
func (s *Server) acceptAll(c *fiber.Ctx, src *Source, parts []providers.Part, key string) error {
	outcomes, errs := make([]outcome, len(parts)), make([]error, len(parts))
	ctx, traceparent := c.UserContext(), s.senderTraceparent(c)
	var wg sync.WaitGroup
	for i := range parts {
		if parts[i].Ignored != "" {
			s.metrics.ignored.WithLabelValues(src.Name).Inc()
			continue
		}
		ev := &parts[i].Event
		k := dedup.EventKey(key, ev.ID, i, len(parts))
		wg.Go(func() { outcomes[i], errs[i] = s.putAs(ctx, src, ev, k, traceparent) })
	}
	wg.Wait()
	if err := batchFailure(errs); err != nil {
		return err
	}
	return s.answer(c, src, fiber.StatusOK, batchAnswer(parts, outcomes))
}

// batchFailure is the failure of a delivery some of whose events failed: Kafka's if any
// (503, retried), else the first.
func batchFailure(errs []error) error {
	var first, unavailable error
	failed := 0
	for _, err := range errs {
		if err == nil {
			continue
		}
		failed++
		first = cmp.Or(first, err)
		if failure.KindOf(err) == failure.Unavailable {
			unavailable = cmp.Or(unavailable, err)
		}
	}
	if failed == 0 {
		return nil
	}
	cause := cmp.Or(unavailable, first)
	var fe *failure.Error
	if !errors.As(cause, &fe) {
		return cause
	}
	reason := fmt.Sprintf("%d of the delivery's %d events failed, the others are stored: %s", failed, len(errs), fe.Reason)
	return failure.Wrap(fe.Kind, reason, fe.Err)
}
