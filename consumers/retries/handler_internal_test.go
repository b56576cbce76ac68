package retries

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

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
