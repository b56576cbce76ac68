package ingress

import (
	"bytes"
	"context"
	"strconv"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/internal/telemetry"
)

// Tracing is how the ingress traces deliveries (docs/tracing.md); the zero value traces
// nothing.
type Tracing struct {
	// Provider makes the spans: a server span per delivery, with spans for verification and
	// dedup; nil makes none. The producer's client adds the produce spans (telemetry.KafkaHooks).
	Provider trace.TracerProvider
	// Sender is what a sender's traceparent header is to the delivery: SenderLink ("" too),
	// SenderParent or SenderIgnore.
	Sender string
}

// What a sender's traceparent header is to the delivery (http.sender_traceparent).
const (
	// SenderLink: the delivery starts a trace of its own, linked to the sender's span. A
	// sender is outside the bridge's trust boundary: it neither chooses the delivery's trace
	// id nor, through its sampled flag, whether the delivery is sampled.
	SenderLink = "link"
	// SenderParent: the delivery's span is a child of the sender's (a sender that is one of
	// your own services).
	SenderParent = "parent"
	// SenderIgnore: the header is not read.
	SenderIgnore = "ignore"
)

// tracerScope is the instrumentation scope of the ingress's spans.
const tracerScope = "github.com/socialbridge/bridge/bridge/ingress"

// traced is the handlers of a webhook route, after traceDelivery when tracing is on.
func (s *Server) traced(handlers ...fiber.Handler) []fiber.Handler {
	if s.tracer == nil {
		return handlers
	}
	return append([]fiber.Handler{s.traceDelivery}, handlers...)
}

// traceDelivery runs the rest of a webhook's handlers inside the delivery's server span, and
// answers their error itself, so that the span ends with the answer's status.
func (s *Server) traceDelivery(c *fiber.Ctx) error {
	route := "/webhooks/{source}"
	if c.Params("token") != "" {
		route += "/{token}"
	}
	ctx, opts := s.senderContext(c)
	ctx, span := s.tracer.Start(ctx, "POST "+route, append(opts, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(
		semconv.HTTPRequestMethodPost,
		semconv.HTTPRoute(route),
		semconv.URLPath(logPath(c)), // a URL token is a credential
		semconv.URLScheme(c.Protocol()),
		semconv.ClientAddress(c.Context().RemoteIP().String()),
		attribute.String("bridge.source", s.sourceLabel(c)),
	))...)
	c.SetUserContext(ctx)
	err := c.Next()
	if err != nil {
		err = s.handleError(c, err)
	}
	s.endDelivery(c, span)
	return err
}

// senderContext is where the delivery's span starts from, by the sender's traceparent
// header and Tracing.Sender: a child of the sender's span, or a new trace linked to it.
func (s *Server) senderContext(c *fiber.Ctx) (context.Context, []trace.SpanStartOption) {
	ctx := c.UserContext()
	sc, ok := s.senderSpan(c)
	switch {
	case !ok:
		return ctx, nil
	case s.sender == SenderParent:
		return trace.ContextWithRemoteSpanContext(ctx, sc), nil
	}
	link := trace.Link{SpanContext: sc, Attributes: []attribute.KeyValue{attribute.String("bridge.link", "sender")}}
	return ctx, []trace.SpanStartOption{trace.WithNewRoot(), trace.WithLinks(link)}
}

// senderSpan is the span context of the sender's traceparent header, unless it is ignored;
// false when there is none or it is malformed.
func (s *Server) senderSpan(c *fiber.Ctx) (trace.SpanContext, bool) {
	h := &c.Request().Header
	if s.sender == SenderIgnore || len(h.Peek("traceparent")) == 0 {
		return trace.SpanContext{}, false
	}
	sc := trace.SpanContextFromContext(telemetry.Propagator.Extract(context.Background(), headerCarrier{h}))
	return sc, sc.IsValid()
}

// senderTraceparent is the sender's traceparent header as the delivery's records carry it
// while tracing is off: as received, when it is well-formed and not ignored. With tracing on
// the records carry the delivery's own (ownTraceparent) instead.
func (s *Server) senderTraceparent(c *fiber.Ctx) []byte {
	if s.tracer != nil {
		return nil
	}
	if _, ok := s.senderSpan(c); !ok {
		return nil
	}
	return c.Request().Header.Peek("traceparent")
}

// ownTraceparent is the traceparent a record made in ctx carries: with tracing on, that of
// the delivery's span (the producer's hooks replace it with their produce span's, a child
// of it); else the sender's, as senderTraceparent gave it.
func (s *Server) ownTraceparent(ctx context.Context, sender []byte) []byte {
	if s.tracer == nil {
		return sender
	}
	if tp := telemetry.Traceparent(ctx); tp != "" {
		return []byte(tp)
	}
	return nil
}

// endDelivery ends the delivery's span with its answer: the status code, and the answer's
// status word (accepted, duplicate, quarantined, unauthorized, …) as bridge.outcome. A
// 5xx is an error (a 4xx is the sender's, as the HTTP conventions have it).
func (s *Server) endDelivery(c *fiber.Ctx, span trace.Span) {
	defer span.End()
	if !span.IsRecording() {
		return
	}
	code := c.Response().StatusCode()
	span.SetAttributes(semconv.HTTPResponseStatusCode(code), attribute.String("bridge.outcome", answerStatus(c.Response().Body())))
	if n := c.Request().Header.ContentLength(); n >= 0 {
		span.SetAttributes(semconv.HTTPRequestBodySize(n))
	}
	if code >= 500 {
		span.SetAttributes(semconv.ErrorTypeKey.String(strconv.Itoa(code)))
		span.SetStatus(codes.Error, answerStatus(c.Response().Body()))
	}
}

// answerStatus is the status word an answer starts with ({"status":"accepted",…}).
func answerStatus(body []byte) string {
	rest, ok := bytes.CutPrefix(body, []byte(`{"status":"`))
	if !ok {
		return ""
	}
	word, _, _ := bytes.Cut(rest, []byte(`"`))
	return string(word)
}

// span starts an internal span of the request path in ctx; a span that does nothing while
// tracing is off.
func (s *Server) span(ctx context.Context, name string) (context.Context, trace.Span) {
	if s.tracer == nil {
		return ctx, noop.Span{}
	}
	return s.tracer.Start(ctx, name)
}

// endSpan ends a span of the request path, with an error status and the reason a client
// would be told when err is not nil.
func endSpan(span trace.Span, err error) {
	if err != nil && span.IsRecording() {
		_, _, reason := classify(err)
		span.SetStatus(codes.Error, reason)
	}
	span.End()
}

// annotate names the event a delivery carries on its span.
func annotate(ctx context.Context, ev *event.Event) {
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.SetAttributes(attribute.String("bridge.event.id", ev.ID), attribute.String("bridge.event.type", ev.Type),
			attribute.String("bridge.provider", ev.Provider))
	}
}

// headerCarrier reads a request's headers for the propagator.
type headerCarrier struct{ h *fasthttp.RequestHeader }

func (c headerCarrier) Get(key string) string { return string(c.h.Peek(key)) }
func (headerCarrier) Set(string, string)      {}
func (headerCarrier) Keys() []string          { return nil }

// endDedup ends the dedup span of key with its outcome.
func endDedup(span trace.Span, key string, dup bool, err error) {
	if span.IsRecording() {
		span.SetAttributes(attribute.String("bridge.dedup.key", key), attribute.Bool("bridge.duplicate", dup))
	}
	endSpan(span, err)
}
