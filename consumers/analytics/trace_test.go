package analytics

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/internal/telemetry"
	"github.com/socialbridge/bridge/schemas"
)

// TestBatchSpanLinksItsRecords: with tracing on, each batch's transaction is a span of its
// own, linked to the traces of the records it counts: every record, each in a trace of its
// own (its traceparent header), is linked from a batch span.
func TestBatchSpanLinksItsRecords(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	defer telemetry.Use(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))()
	k := newTestKafka(t)
	events := knownEvents(40, 2, 11)
	enc, err := schemas.NewSingleObject()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	var recs []*kgo.Record
	for i := range events {
		v, err := enc.Encode(nil, &events[i])
		if err != nil {
			t.Fatal(err)
		}
		id := fmt.Sprintf("%032x", i+1)
		want[id] = true
		recs = append(recs, &kgo.Record{Topic: event.Topic(k.prefix, events[i].Type), Key: []byte(events[i].ID), Value: v,
			Headers: []kgo.RecordHeader{{Key: "traceparent", Value: fmt.Appendf(nil, "00-%s-%016x-01", id, i+1)}}})
	}
	if err := k.client.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	database := "sqlite:" + filepath.Join(t.TempDir(), "analytics.db")
	startService(t, k.config(database))
	waitCounted(t, openStore(t, database), k.ends(t))

	linked, counted := map[string]bool{}, 0
	deadline := time.Now().Add(time.Minute)
	for counted < len(events) && time.Now().Before(deadline) { // the span ends just after the commit
		linked, counted = map[string]bool{}, 0
		for _, s := range rec.Ended() {
			if s.Name() != "process analytics batch" {
				continue
			}
			if s.Parent().IsValid() || s.SpanKind() != trace.SpanKindConsumer {
				t.Fatalf("a batch span has the parent %v, kind %v: want a consumer root", s.Parent(), s.SpanKind())
			}
			for _, kv := range s.Attributes() {
				if kv.Key == "messaging.batch.message_count" {
					counted += int(kv.Value.AsInt64())
				}
			}
			for _, l := range s.Links() {
				linked[l.SpanContext.TraceID().String()] = true
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	if counted != len(events) {
		t.Fatalf("batch spans count %d records, want %d", counted, len(events))
	}
	for id := range want {
		if !linked[id] {
			t.Errorf("no batch span links to the trace %s of its record", id)
		}
	}
	if len(linked) != len(want) {
		t.Errorf("batch spans link to %d traces, want %d", len(linked), len(want))
	}
}
