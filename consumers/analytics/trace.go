package analytics

import (
	"context"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/socialbridge/bridge/consumers/analytics/store"
	"github.com/socialbridge/bridge/internal/telemetry"
)

// tracerScope is the instrumentation scope of the consumer's spans.
const tracerScope = "github.com/socialbridge/bridge/consumers/analytics"

// batchLinks is the most records a batch's span links to: the SDK's default link limit
// (OTEL_SPAN_LINK_COUNT_LIMIT), which would drop the others anyway. A batch of many
// deliveries is one transaction; its span links to the first of them, each in its own trace.
const batchLinks = 128

// links appends to dst the links to the traces of recs (their receive spans), up to
// batchLinks in all; none while tracing is off.
func (s *Service) links(dst []trace.Link, recs []*kgo.Record) []trace.Link {
	if s.tracer == nil {
		return dst
	}
	for _, r := range recs {
		if len(dst) == batchLinks {
			break
		}
		if l, ok := telemetry.Link(r); ok {
			dst = append(dst, l)
		}
	}
	return dst
}

// batchSpan starts the span of counting b in one database transaction, linked to its
// records' traces: a batch has many parents, so it is the root of a trace of its own.
func (s *Service) batchSpan(ctx context.Context, b *batch) (context.Context, trace.Span) {
	if s.tracer == nil {
		return ctx, noop.Span{}
	}
	return s.tracer.Start(ctx, "process analytics batch", trace.WithNewRoot(), trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithLinks(b.links...), trace.WithAttributes(
			semconv.MessagingSystemKafka,
			semconv.MessagingOperationTypeProcess,
			semconv.MessagingOperationName("process"),
			semconv.MessagingConsumerGroupName(s.group),
			semconv.MessagingBatchMessageCount(b.records),
			semconv.DBSystemNameKey.String(s.store.System()),
		))
}

// endBatchSpan ends a batch's span with what the transaction counted, or its error.
func endBatchSpan(span trace.Span, applied store.Applied, err error) {
	defer span.End()
	if !span.IsRecording() {
		return
	}
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
		return
	}
	span.SetAttributes(attribute.Int("bridge.analytics.counted", applied.Counted), attribute.Int("bridge.analytics.skipped", applied.Skipped))
}
