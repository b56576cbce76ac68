package telemetry

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// StartClient starts the client span of req, as the HTTP conventions have it, a child of the
// span in req's context, and writes its traceparent into req's headers, so that the server
// called continues the trace. The span records the method, the server's host and port, the
// scheme and template (url.template, "" when there is none) but never the URL itself: a
// Slack webhook's path is its credential, and an action URL may hold a token. attrs are
// added. The caller ends the span with EndClient. With a nil tracer it changes nothing.
func StartClient(tr trace.Tracer, req *http.Request, template string, attrs ...attribute.KeyValue) trace.Span {
	if tr == nil {
		return noop.Span{}
	}
	attrs = append(attrs,
		semconv.HTTPRequestMethodKey.String(req.Method),
		semconv.ServerAddress(req.URL.Hostname()),
		semconv.ServerPort(port(req.URL)),
		semconv.URLScheme(req.URL.Scheme),
	)
	name := req.Method
	if template != "" {
		attrs = append(attrs, semconv.URLTemplate(template))
		name += " " + template
	}
	ctx, span := tr.Start(req.Context(), name, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	Propagator.Inject(ctx, propagation.HeaderCarrier(req.Header))
	return span
}

// EndClient ends a span of StartClient with the call's outcome: the status code, and an
// error status for a status of 400 or more or no answer at all (err, without the URL that
// a url.Error names).
func EndClient(span trace.Span, resp *http.Response, err error) {
	defer span.End()
	if !span.IsRecording() {
		return
	}
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		span.SetAttributes(semconv.ErrorTypeKey.String(errorType(err)))
		span.SetStatus(codes.Error, err.Error())
		return
	}
	span.SetAttributes(semconv.HTTPResponseStatusCode(resp.StatusCode))
	if resp.StatusCode >= 400 {
		span.SetAttributes(semconv.ErrorTypeKey.String(strconv.Itoa(resp.StatusCode)))
		span.SetStatus(codes.Error, resp.Status)
	}
}

func errorType(err error) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return "timeout"
	}
	return "_OTHER"
}

// port is u's port, or its scheme's.
func port(u *url.URL) int {
	if p, err := strconv.Atoi(u.Port()); err == nil {
		return p
	}
	if u.Scheme == "https" {
		return 443
	}
	return 80
}

// Traceparent is the traceparent header of the span in ctx, or "" when it has none.
func Traceparent(ctx context.Context) string {
	var c traceparentCarrier
	Propagator.Inject(ctx, &c)
	return c.value
}

// traceparentCarrier keeps the traceparent an injection sets (a map would cost the
// delivery an allocation more).
type traceparentCarrier struct{ value string }

func (c *traceparentCarrier) Get(string) string { return "" }
func (c *traceparentCarrier) Keys() []string    { return nil }
func (c *traceparentCarrier) Set(key, value string) {
	if key == "traceparent" {
		c.value = value
	}
}

// WithRemote is ctx with the span context of the traceparent header tp as its remote parent;
// ctx as it is when tp is "" or malformed.
func WithRemote(ctx context.Context, tp string) context.Context {
	if tp == "" {
		return ctx
	}
	return Propagator.Extract(ctx, propagation.MapCarrier{"traceparent": tp})
}
