package telemetry

import (
	"context"
	"strconv"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kotel"
	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// KafkaHooks are the options that trace a Kafka client, or none while tracing is off. They
// are franz-go's kotel hooks, tracing only (no meter): a "{topic} publish" producer span per
// record, from the produce call to the broker's acknowledgement, whose context the record
// carries in its traceparent header (replacing one it had), as a child of the span in the
// record's Context; and a "{topic} receive" consumer span per fetched record, a child of
// the context in its traceparent header, left in the record's Context for Process. group
// names the consumer group, if any.
func KafkaHooks(group string) []kgo.Opt {
	tp := Provider()
	if tp == nil {
		return nil
	}
	opts := []kotel.TracerOpt{kotel.TracerProvider(tp), kotel.TracerPropagator(Propagator)}
	if group != "" {
		opts = append(opts, kotel.ConsumerGroup(group))
	}
	k := kotel.NewKotel(kotel.WithTracer(kotel.NewTracer(opts...)))
	return []kgo.Opt{kgo.WithHooks(k.Hooks()...)}
}

// Within makes r's produce span a child of the span in ctx: a record produced as the effect
// of a delivery or of another record stays in its trace. The record keeps ctx's values but
// not its cancellation (franz-go fails a record whose Context ends, and with it the records
// batched with it). Without a tracer it does nothing.
func Within(tr trace.Tracer, ctx context.Context, r *kgo.Record) {
	if tr != nil {
		r.Context = context.WithoutCancel(ctx)
	}
}

// Process starts the span of group processing the fetched record r, in ctx: a consumer span
// "process {topic}" with the messaging conventions' attributes, a child of r's receive span
// (KafkaHooks), or else of the context in r's traceparent header. The caller ends it. With a
// nil tracer it returns ctx and a span that does nothing.
func Process(tr trace.Tracer, ctx context.Context, r *kgo.Record, group string) (context.Context, trace.Span) {
	if tr == nil {
		return ctx, noop.Span{}
	}
	if sc := trace.SpanContextFromContext(r.Context); sc.IsValid() {
		ctx = trace.ContextWithSpanContext(ctx, sc)
	} else {
		ctx = Propagator.Extract(ctx, kotel.NewRecordCarrier(r))
	}
	attrs := append(make([]attribute.KeyValue, 0, 9),
		semconv.MessagingSystemKafka,
		semconv.MessagingOperationTypeProcess,
		semconv.MessagingOperationName("process"),
		semconv.MessagingDestinationName(r.Topic),
		semconv.MessagingConsumerGroupName(group),
		semconv.MessagingDestinationPartitionID(strconv.Itoa(int(r.Partition))),
		semconv.MessagingKafkaOffset(int(r.Offset)),
	)
	if len(r.Key) > 0 && utf8.Valid(r.Key) {
		attrs = append(attrs, semconv.MessagingKafkaMessageKey(string(r.Key)))
	}
	return tr.Start(ctx, "process "+r.Topic, trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(attrs...))
}

// Link is the link to the trace r belongs to (its receive span, else its traceparent
// header), and whether it has one.
func Link(r *kgo.Record) (trace.Link, bool) {
	sc := trace.SpanContextFromContext(r.Context)
	if !sc.IsValid() {
		sc = trace.SpanContextFromContext(Propagator.Extract(context.Background(), kotel.NewRecordCarrier(r)))
	}
	return trace.Link{SpanContext: sc}, sc.IsValid()
}
