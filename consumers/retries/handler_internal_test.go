package retries

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/socialbridge/bridge/consumers"
	"github.com/socialbridge/bridge/event"
)

// answering is a caller that answers every call with res.
type answering result

func (a answering) Call(context.Context, *event.Event) result { return result(a) }

// TestRetryAfterIsCapped: a Retry-After longer than the retry topic can keep a record
// (half its retention) moves the record due at the cap, not later; and a record read with
// a due time past the cap (written by an older version, or a skewed clock) is due at its
// timestamp plus the cap.
func TestRetryAfterIsCapped(t *testing.T) {
	now := time.Date(2026, 5, 8, 12, 0, 0, 0, time.UTC)
	h := testHandler(answering{reason: "action answered 429", retryAfter: 30 * 24 * time.Hour}, now)
	h.maxWait = 12 * time.Hour
	yes := true
	j := &job{r: &kgo.Record{Topic: "p.post.failed", Offset: 7}, ev: event.Event{ID: "evt_1", Retryable: &yes}}
	h.retry(context.Background(), j)
	if j.outcome != "moved" || j.move == nil {
		t.Fatalf("outcome %q, want moved", j.outcome)
	}
	due, _ := consumers.Header(j.move, HeaderDueAt)
	if want := now.Add(12 * time.Hour).Format(time.RFC3339Nano); due != want {
		t.Errorf("due %s, want %s (the cap)", due, want)
	}

	far := &kgo.Record{Topic: "p.post.failed.retry.1", Timestamp: now, Headers: []kgo.RecordHeader{
		{Key: HeaderDueAt, Value: []byte(now.Add(40 * 24 * time.Hour).Format(time.RFC3339Nano))}}}
	if got := h.due(far, 1); !got.Equal(now.Add(12 * time.Hour)) {
		t.Errorf("due of a record asking 40 days = %s, want its timestamp + 12h", got)
	}
	near := &kgo.Record{Topic: "p.post.failed.retry.1", Timestamp: now, Headers: []kgo.RecordHeader{
		{Key: HeaderDueAt, Value: []byte(now.Add(time.Hour).Format(time.RFC3339Nano))}}}
	if got := h.due(near, 1); !got.Equal(now.Add(time.Hour)) {
		t.Errorf("due of a record asking 1h = %s, want it as asked", got)
	}
}

// TestRetryAfterAtTheCapIsNotCapped: a Retry-After of exactly the cap is taken as asked,
// with no warning that it was cut; one a nanosecond longer is cut to the cap, warned.
func TestRetryAfterAtTheCapIsNotCapped(t *testing.T) {
	now := time.Date(2026, 5, 8, 12, 0, 0, 0, time.UTC)
	yes := true
	for _, c := range []struct {
		retryAfter time.Duration
		warned     bool
	}{{12 * time.Hour, false}, {12*time.Hour + time.Nanosecond, true}} {
		var logs bytes.Buffer
		h := testHandler(answering{reason: "action answered 429", retryAfter: c.retryAfter}, now)
		h.maxWait, h.log = 12*time.Hour, slog.New(slog.NewTextHandler(&logs, nil))
		j := &job{r: &kgo.Record{Topic: "p.post.failed", Offset: 7}, ev: event.Event{ID: "evt_1", Retryable: &yes}}
		h.retry(context.Background(), j)
		due, _ := consumers.Header(j.move, HeaderDueAt)
		if want := now.Add(12 * time.Hour).Format(time.RFC3339Nano); due != want {
			t.Errorf("Retry-After %s: due %s, want %s", c.retryAfter, due, want)
		}
		if warned := strings.Contains(logs.String(), "Retry-After capped"); warned != c.warned {
			t.Errorf("Retry-After %s with a cap of 12h: warned %v, want %v; log: %s", c.retryAfter, warned, c.warned, logs.String())
		}
	}
}

// testHandler is a handler of prefix "p" with delays 1m and 5m, calling a, at the time now.
func testHandler(a caller, now time.Time) *handler {
	return &handler{
		prefix: "p.", delays: []time.Duration{time.Minute, 5 * time.Minute},
		stage:  map[string]int{"p.post.failed": 0, "p.post.failed.retry.1": 1, "p.post.failed.retry.2": 2},
		action: a, holds: &consumers.Holds{}, metrics: consumers.NewMetrics(consumers.NewRegistry(), "g"),
		log: slog.New(slog.DiscardHandler), workers: 1, budget: time.Minute, now: func() time.Time { return now },
		maxWait: 24 * time.Hour,
	}
}

// TestDescribePermanentFailure: the retry-error of a record dead-lettered without a call
// says why (its flag, or its code classed permanent), then the code and the message the
// record carries, each only when it has one.
func TestDescribePermanentFailure(t *testing.T) {
	no := false
	str := func(s string) *string { return &s }
	for _, c := range []struct {
		ev   event.Event
		want string
	}{
		{event.Event{Retryable: &no}, "retryable=false"},
		{event.Event{Retryable: &no, ErrorCode: str("rate_limited")}, "retryable=false, error_code rate_limited"},
		{event.Event{Retryable: &no, ErrorMessage: str("banned")}, "retryable=false: banned"},
		{event.Event{ErrorCode: str("invalid_media"), ErrorMessage: str("bad file")},
			"error code classed permanent, error_code invalid_media: bad file"},
	} {
		if got := describe(&c.ev); got != c.want {
			t.Errorf("describe = %q, want %q", got, c.want)
		}
	}
}

// TestTracedSpans: with tracing on, the span of a record's processing is an error, with the
// dead-letter's reason, only when the record is dead-lettered; and a record moved to a
// retry topic is produced as its child, in the delivery's trace.
func TestTracedSpans(t *testing.T) {
	now := time.Date(2026, 5, 8, 12, 0, 0, 0, time.UTC)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	yes, no := true, false
	for _, c := range []struct {
		name, outcome string
		res           result
		retryable     *bool
		status        codes.Code
		description   string
	}{
		{"done", "done", result{ok: true}, &yes, codes.Unset, ""},
		{"moved", "moved", result{reason: "action answered 503"}, &yes, codes.Unset, ""},
		{"permanent", "dead_lettered", result{ok: true}, &no, codes.Error, "permanent failure: retryable=false"},
		{"refused", "dead_lettered", result{permanent: true, reason: "action answered 404"}, &yes, codes.Error, "action answered 404"},
	} {
		h := testHandler(answering(c.res), now)
		h.tracer = tp.Tracer("test")
		j := &job{r: &kgo.Record{Topic: "p.post.failed", Offset: 7}, ev: event.Event{ID: "evt_" + c.name, Retryable: c.retryable}}
		h.traced(context.Background(), j)
		spans := rec.Ended()
		s := spans[len(spans)-1]
		if j.outcome != c.outcome || s.Status().Code != c.status || s.Status().Description != c.description {
			t.Errorf("%s: outcome %q, span status %v %q; want %q, %v %q", c.name, j.outcome,
				s.Status().Code, s.Status().Description, c.outcome, c.status, c.description)
		}
		if j.move == nil {
			continue
		}
		if got := trace.SpanContextFromContext(j.move.Context); !got.Equal(s.SpanContext()) {
			t.Errorf("%s: the move's context holds span %v, want the processing span %v", c.name, got.SpanID(), s.SpanContext().SpanID())
		}
	}
}
