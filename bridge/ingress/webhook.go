package ingress

import (
	"bytes"
	"context"
	"errors"
	"mime"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/socialbridge/bridge/bridge/dedup"
	"github.com/socialbridge/bridge/bridge/failure"
	"github.com/socialbridge/bridge/bridge/providers"
	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/internal/telemetry"
)

// webhook is the request path, in order: find the source, check the media type, verify the
// signature on the raw bytes, normalize, dedup, encode, produce, answer after the ack.
func (s *Server) webhook(c *fiber.Ctx) error {
	src, ok := s.sources[c.Params("source")]
	if !ok {
		return failure.New(failure.UnknownSource, "unknown source %q", c.Params("source"))
	}
	if !isJSON(c.Request().Header.ContentType()) {
		return failure.New(failure.NotJSON, "content type must be application/json")
	}
	// The raw bytes as received: Fiber's c.Body() would inflate a Content-Encoding without
	// a bound (past max_body_bytes) and hand back its error text as the body on failure;
	// signatures are over the bytes on the wire anyway.
	body, now := c.Request().Body(), s.now()
	headers := &c.Request().Header
	if err := s.verify(c, src, body, now); err != nil {
		if failure.KindOf(err) == failure.Unauthorized {
			s.metrics.verifyFailures.WithLabelValues(src.Name).Inc()
		}
		return err
	}
	if err := s.fresh(src, body, now); err != nil {
		return err
	}
	key := src.dedupKey(headers, body)
	if sp, ok := src.Preset.(providers.Splitter); ok {
		return s.split(c, src, sp, body, now, key)
	}
	ev := events.Get().(*event.Event)
	defer putEvent(ev)
	if err := src.Preset.Normalize(headers, body, ev); err != nil {
		if failure.KindOf(err) != failure.Unnormalizable {
			return err
		}
		return s.quarantine(c, src, body, now, err, key)
	}
	s.envelope(ev, src, body, now)
	return s.accept(c, src, ev, key)
}

var events = sync.Pool{New: func() any { return new(event.Event) }}

func putEvent(ev *event.Event) {
	*ev = event.Event{}
	events.Put(ev)
}

// envelope sets what the bridge knows of ev: its source, provider and arrival, and its raw
// payload, the body, unless a Splitter has narrowed it already.
func (s *Server) envelope(ev *event.Event, src *Source, body []byte, now time.Time) {
	ev.Source, ev.Provider, ev.ReceivedAt = src.Name, src.Provider, now
	if ev.Raw == nil {
		ev.Raw = body
	}
	if ev.OccurredAt.IsZero() {
		ev.OccurredAt = now
	}
}

// accept dedups (by key, or by event id when key is ""), encodes and produces an authentic,
// normalized event, and answers.
func (s *Server) accept(c *fiber.Ctx, src *Source, ev *event.Event, key string) error {
	annotate(c.UserContext(), ev)
	o, err := s.putAs(c.UserContext(), src, ev, dedup.EventKey(key, ev.ID, 0, 1), s.senderTraceparent(c))
	if err != nil {
		return err
	}
	switch {
	case o.dup:
		return s.answer(c, src, fiber.StatusOK, duplicateAnswer(ev.ID))
	case o.spooled:
		return s.answer(c, src, fiber.StatusOK, spooledAnswer(ev.ID))
	}
	return s.answer(c, src, fiber.StatusOK, acceptedAnswer(ev.ID, o.rec))
}

// outcome is what became of one event: produced, as rec; spooled (rec is in the local spool,
// see spool.go); or a duplicate.
type outcome struct {
	rec     *kgo.Record
	dup     bool
	spooled bool
}

// put dedups ev by its id, encodes and produces it, waiting for Kafka's acknowledgement.
func (s *Server) put(ctx context.Context, src *Source, ev *event.Event, traceparent []byte) (outcome, error) {
	return s.putAs(ctx, src, ev, ev.ID, traceparent)
}

// putAs is put deduplicating on key. A key other than the event id goes with the record, in
// the header dedup.KeyHeader, so that a restart rebuilds the dedup store with it. The records of
// a source that spools may go to the spool instead (putSpooling).
func (s *Server) putAs(ctx context.Context, src *Source, ev *event.Event, key string, traceparent []byte) (outcome, error) {
	if src.Spool && s.spool != nil {
		return s.putSpooling(ctx, src, ev, key, traceparent)
	}
	dup, done, err := s.reserve(ctx, src, key, ev.ReceivedAt)
	if err != nil || dup {
		return outcome{dup: dup}, err
	}
	rec, err := s.record(ev, s.ownTraceparent(ctx, traceparent))
	if err != nil {
		done(false)
		return outcome{}, err
	}
	if key != ev.ID {
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: dedup.KeyHeader, Value: []byte(key)})
	}
	telemetry.Within(s.tracer, ctx, rec)
	if err := s.produce(rec, func(err error) { done(err == nil) }); err != nil {
		return outcome{}, err
	}
	return outcome{rec: rec}, nil
}

// reserve claims key for src in the dedup store (see dedup.Reserver), counting duplicates.
func (s *Server) reserve(ctx context.Context, src *Source, key string, now time.Time) (dup bool, done func(bool), err error) {
	ctx, span := s.span(ctx, "dedup")
	start := s.now()
	defer func() {
		s.metrics.reserved(s.now().Sub(start), dup, err)
		endDedup(span, key, dup, err)
	}()
	if t, ok := s.dedup.(tryReserver); ok {
		if dup, done, ok = t.TryReserve(src.Name, key, now); ok {
			s.countDup(src, dup)
			return dup, done, nil
		}
	}
	rctx, cancel := context.WithTimeout(ctx, s.dedupTTL)
	dup, done, err = s.dedup.Reserve(rctx, src.Name, key, now)
	cancel()
	if failure.KindOf(err) == failure.Unavailable {
		return false, nil, err // the store's own reason: rebuilding, or unreachable
	} else if err != nil {
		return false, nil, failure.Wrap(failure.Unavailable, "an earlier delivery of this event is still waiting for kafka", err)
	}
	s.countDup(src, dup)
	return dup, done, nil
}

// tryReserver is a dedup store that can answer without waiting, most of the time (the
// memory store): see dedup.Store.TryReserve.
type tryReserver interface {
	TryReserve(source, id string, now time.Time) (dup bool, done func(accepted bool), ok bool)
}

func (s *Server) countDup(src *Source, dup bool) {
	if dup {
		s.metrics.dedupHits.WithLabelValues(src.Name).Inc()
	}
}

// record builds the Kafka record of ev. Everything it holds is owned by the record, since
// the producer may still hold it after the request has been answered.
func (s *Server) record(ev *event.Event, traceparent []byte) (*kgo.Record, error) {
	value, err := s.encoder.Encode(make([]byte, 0, len(ev.Raw)+512), ev)
	if err != nil {
		return nil, failure.Wrap(failure.Internal, "encode", err)
	}
	topic, ok := s.topics[ev.Type]
	if !ok {
		topic = event.Topic(s.prefix, ev.Type)
	}
	rec := &kgo.Record{
		Topic:     topic,
		Key:       []byte(ev.ID),
		Value:     value,
		Timestamp: ev.ReceivedAt,
		Headers:   s.headers(ev.Type, ev.Source, ev.Provider, ev.ReceivedAt, traceparent),
	}
	return rec, nil
}

func (s *Server) headers(eventType, source, provider string, receivedAt time.Time, traceparent []byte) []kgo.RecordHeader {
	h := make([]kgo.RecordHeader, 0, 5)
	if eventType != "" {
		h = append(h, kgo.RecordHeader{Key: "event-type", Value: s.bytes(eventType)})
	}
	h = append(h,
		kgo.RecordHeader{Key: "source", Value: s.bytes(source)},
		kgo.RecordHeader{Key: "provider", Value: s.bytes(provider)},
		kgo.RecordHeader{Key: "received-at", Value: receivedAt.UTC().AppendFormat(make([]byte, 0, len(time.RFC3339Nano)), time.RFC3339Nano)},
	)
	if len(traceparent) > 0 {
		h = append(h, kgo.RecordHeader{Key: "traceparent", Value: bytes.Clone(traceparent)})
	}
	return h
}

// produce hands rec to the producer, timing the wait for the acknowledgement.
func (s *Server) produce(rec *kgo.Record, settle func(error)) error {
	start := time.Now()
	err := s.producer.Produce(rec, settle)
	outcome := "acked"
	if err != nil {
		outcome = "failed"
	}
	s.metrics.produceSeconds.WithLabelValues(outcome).Observe(time.Since(start).Seconds())
	return err
}

// quarantine keeps an authentic delivery that cannot be normalized: its raw bytes go to the
// dead-letter topic with the reason in headers, and the provider gets a 202 so it stops
// retrying. It is answered only once Kafka has the record. With a key (a content-keyed
// source), a delivery whose key was seen is a duplicate and stores nothing. cause is the
// failure, wrapped or not, found by errors.As as failure.KindOf finds its kind.
func (s *Server) quarantine(c *fiber.Ctx, src *Source, body []byte, now time.Time, cause error, key string) error {
	fe, ok := errors.AsType[*failure.Error](cause)
	if !ok {
		return cause
	}
	reason := fe.Reason
	done := func(bool) {}
	if key != "" {
		dup, d, err := s.reserve(c.UserContext(), src, key, now)
		if err != nil {
			return err
		}
		if dup {
			return s.answer(c, src, fiber.StatusOK, duplicateAnswer(key))
		}
		done = d
	}
	if span := trace.SpanFromContext(c.UserContext()); span.IsRecording() {
		span.SetAttributes(attribute.String("bridge.quarantine.reason", reason))
	}
	ctx, contentType := c.UserContext(), c.Request().Header.ContentType()
	kept := keptHeaders(src.Preset, &c.Request().Header)
	if err := s.deadLetterAs(ctx, src, body, now, reason, s.senderTraceparent(c), contentType, kept, key, done); err != nil {
		return err
	}
	return s.answer(c, src, fiber.StatusAccepted, quarantinedAnswer(reason))
}

// deadLetter produces body to the quarantine topic with the reason in headers, and waits
// for Kafka's acknowledgement.
func (s *Server) deadLetter(src *Source, body []byte, now time.Time, reason string, traceparent, contentType []byte) error {
	return s.deadLetterAs(context.Background(), src, body, now, reason, traceparent, contentType, nil, "", func(bool) {})
}

// deadLetterAs is deadLetter with the request headers kept (keptHeaders), the delivery's
// dedup key, if any, in the header dedup.KeyHeader, and settle called with the record's
// final outcome, in the trace of ctx.
func (s *Server) deadLetterAs(ctx context.Context, src *Source, body []byte, now time.Time, reason string, traceparent, contentType []byte,
	kept []kgo.RecordHeader, key string, settle func(stored bool)) error {
	rec := &kgo.Record{
		Topic:     event.QuarantineTopic(s.prefix),
		Value:     bytes.Clone(body),
		Timestamp: now,
		Headers: append(s.headers("", src.Name, src.Provider, now, s.ownTraceparent(ctx, traceparent)),
			kgo.RecordHeader{Key: "reason", Value: []byte(reason)},
			kgo.RecordHeader{Key: "content-type", Value: bytes.Clone(contentType)}),
	}
	rec.Headers = append(rec.Headers, kept...)
	if key != "" {
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: dedup.KeyHeader, Value: []byte(key)})
	}
	telemetry.Within(s.tracer, ctx, rec)
	if err := s.produce(rec, func(err error) { settle(err == nil) }); err != nil {
		return err
	}
	s.log.Info("quarantined a delivery", "source", src.Name, "reason", reason, "offset", rec.Offset)
	return nil
}

// keptHeaders are the headers of the request that p reads to normalize (providers.HeaderReader),
// as the quarantine keeps them (providers.RequestHeaderPrefix and the name in lower case), so
// that a replay normalizes the delivery as the ingress would have: those only, and only
// those the request has.
func keptHeaders(p providers.Preset, h providers.Headers) []kgo.RecordHeader {
	hr, ok := p.(providers.HeaderReader)
	if !ok {
		return nil
	}
	var out []kgo.RecordHeader
	for _, name := range hr.NormalizeHeaders() {
		if v := h.Peek(name); len(v) > 0 {
			out = append(out, kgo.RecordHeader{Key: providers.RequestHeaderPrefix + strings.ToLower(name), Value: bytes.Clone(v)})
		}
	}
	return out
}

func (s *Server) answer(c *fiber.Ctx, src *Source, code int, body []byte) error {
	s.metrics.answered(src.Name, code)
	c.Status(code).Response().Header.SetContentType(fiber.MIMEApplicationJSON)
	return c.Send(body)
}

func (s *Server) wrongMethod(c *fiber.Ctx) error {
	src, ok := s.sources[c.Params("source")]
	if !ok {
		return failure.New(failure.UnknownSource, "unknown source %q", c.Params("source"))
	}
	if _, ok := src.Preset.(providers.Handshaker); ok && c.Params("token") == "" {
		c.Set(fiber.HeaderAllow, "GET, POST")
	}
	return failure.New(failure.WrongMethod, "method %s not allowed: webhooks are POSTed", c.Method())
}

// isJSON accepts application/json and any application/*+json, with parameters.
func isJSON(ct []byte) bool {
	if bytes.HasPrefix(ct, []byte("application/json")) && (len(ct) == 16 || ct[16] == ';' || ct[16] == ' ') {
		return true
	}
	mt, _, err := mime.ParseMediaType(string(ct))
	return err == nil && (mt == "application/json" || (len(mt) > 17 && mt[:12] == "application/" && mt[len(mt)-5:] == "+json"))
}
