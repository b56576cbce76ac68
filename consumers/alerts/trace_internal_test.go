package alerts

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/consumers"
	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/internal/telemetry"
)

// recordingBatch is a batch that keeps what is produced in it.
type recordingBatch struct{ produced []*kgo.Record }

func (b *recordingBatch) Produce(_ context.Context, r *kgo.Record) {
	b.produced = append(b.produced, r)
}
func (*recordingBatch) Count(string, string)        {}
func (*recordingBatch) CountDeadLettered(string)    {}
func (*recordingBatch) Hold(*kgo.Record, time.Time) {}

// TestDecisionsStayInTheirRecordsTrace: with tracing on, the alert a keyed record raises
// keeps the traceparent of the span that decided it (the Slack post continues it), and the
// state record that writes the alert is produced in that trace. The tracing test of
// cmd/bridge follows a whole expiry; this one runs with the package's own tests.
func TestDecisionsStayInTheirRecordsTrace(t *testing.T) {
	defer telemetry.Use(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(tracetest.NewSpanRecorder())))()
	reg := prometheus.NewRegistry()
	h := newHandler(config.Default(), 1, nil, consumers.NewMetrics(reg, "g"), newAlertsMetrics(reg, "g", &parts{}), &parts{},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	p := newPartition(0)
	h.parts.add(map[int32]*partition{0: p})
	n := notice{Type: event.PostTokenExpired, ID: "evt_1", Key: Key{Source: "acme", Profile: "brand", Platform: "x"},
		ReceivedAt: time.Date(2026, 5, 8, 12, 0, 0, 0, time.UTC)}
	const traceID = "0af7651916cd43dd8448eb211c80319c"
	r := &kgo.Record{Topic: h.keyed, Key: n.Key.bytes(), Value: n.appendTo(nil),
		Headers: []kgo.RecordHeader{{Key: "traceparent", Value: []byte("00-" + traceID + "-b7ad6b7169203331-01")}}}
	b := &recordingBatch{}
	fs := kgo.Fetches{{Topics: []kgo.FetchTopic{{Topic: h.keyed, Partitions: []kgo.FetchPartition{{Partition: 0, Records: []*kgo.Record{r}}}}}}}
	if err := h.handle(context.Background(), b, fs); err != nil {
		t.Fatal(err)
	}
	var alerts int
	for _, out := range b.produced {
		if string(out.Key) != string(n.Key.stateKey(kindAlert)) {
			continue
		}
		alerts++
		var a Alert
		if err := json.Unmarshal(out.Value, &a); err != nil {
			t.Fatal(err)
		}
		if len(a.Traceparent) < 35 || a.Traceparent[3:35] != traceID {
			t.Errorf("the alert's traceparent %q is not of the record's trace %s", a.Traceparent, traceID)
		}
		if out.Context == nil || trace.SpanContextFromContext(out.Context).TraceID().String() != traceID {
			t.Errorf("the alert's state record is produced outside the record's trace %s", traceID)
		}
	}
	if alerts != 1 {
		t.Fatalf("%d alert records produced of %d records, want 1", alerts, len(b.produced))
	}
}
