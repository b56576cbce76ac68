package waterfall_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/socialbridge/bridge/internal/telemetry/waterfall"
)

// delivery makes one trace like a delivery's: a server span, a step, a produce span, and a
// failed client call under a consumer span.
func delivery(tr trace.Tracer, name string) {
	ctx, root := tr.Start(context.Background(), name, trace.WithSpanKind(trace.SpanKindServer))
	_, step := tr.Start(ctx, "verify")
	step.End()
	pctx, produce := tr.Start(ctx, "social.post.failed publish", trace.WithSpanKind(trace.SpanKindProducer))
	cctx, process := tr.Start(pctx, "process social.post.failed", trace.WithSpanKind(trace.SpanKindConsumer))
	_, call := tr.Start(cctx, "POST /retry", trace.WithSpanKind(trace.SpanKindClient))
	call.SetStatus(codes.Error, "503 Service Unavailable")
	call.End()
	process.End()
	produce.End()
	root.End()
}

func TestRecentKeepsTheLastSpansByTrace(t *testing.T) {
	r := waterfall.New(10)
	tr := sdktrace.NewTracerProvider(sdktrace.WithSyncer(r)).Tracer("github.com/socialbridge/bridge/bridge/ingress")
	delivery(tr, "first")
	delivery(tr, "second")
	traces := r.Traces(50)
	if len(traces) != 2 {
		t.Fatalf("%d traces, want 2", len(traces))
	}
	second := traces[0]
	var names []string
	for _, s := range second.Spans {
		names = append(names, s.Name)
	}
	if got := strings.Join(names, ","); got != "second,verify,social.post.failed publish,process social.post.failed,POST /retry" {
		t.Errorf("the latest trace's spans in waterfall order: %s", got)
	}
	if second.Spans[0].Part != "ingress" || second.Spans[0].Kind != "server" || !second.Spans[4].Failed {
		t.Errorf("spans: %+v", second.Spans)
	}
	// 10 spans kept of 10: one more drops the oldest, the first trace's root.
	delivery(tr, "third")
	for _, tc := range r.Traces(50) {
		for _, s := range tc.Spans {
			if s.Name == "first" {
				t.Fatal("the oldest span is still kept past the bound")
			}
		}
	}
	if n := len(r.Traces(1)); n != 1 {
		t.Errorf("Traces(1) returned %d", n)
	}
}

func TestPageDrawsEachTrace(t *testing.T) {
	r := waterfall.New(100)
	tr := sdktrace.NewTracerProvider(sdktrace.WithSyncer(r)).Tracer("github.com/socialbridge/bridge/consumers/retries")
	delivery(tr, "POST /webhooks/{source}")
	srv := httptest.NewServer(r.Handler())
	defer srv.Close()
	page := get(t, srv.URL+"/traces")
	if n := strings.Count(page, `<section class="trace"`); n != 1 {
		t.Fatalf("%d traces drawn, want 1:\n%s", n, page)
	}
	if n := strings.Count(page, `<details class="row`); n != 5 {
		t.Errorf("%d rows, want 5", n)
	}
	if !regexp.MustCompile(`class="bar" style="left: [0-9.]+%; width: [0-9.]+%"`).MatchString(page) {
		t.Errorf("no positioned bar in:\n%s", page)
	}
	if strings.Contains(page, "ZgotmplZ") {
		t.Errorf("the template refused a value:\n%s", page)
	}
	var traces []waterfall.Trace
	if err := json.Unmarshal([]byte(get(t, srv.URL+"/traces/api/traces")), &traces); err != nil || len(traces) != 1 || len(traces[0].Spans) != 5 {
		t.Fatalf("the API: %v %+v", err, traces)
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("%s: %d %s", url, resp.StatusCode, b)
	}
	return string(b)
}
