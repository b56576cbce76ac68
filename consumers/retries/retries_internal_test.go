package retries

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/socialbridge/bridge/consumers"
	"github.com/socialbridge/bridge/consumers/internal/grouptest"
)

// TestNewWiresTheGroup: New reads the input topic and one retry topic per delay, each
// retry topic's records having as many failed calls behind them as its number; a batch
// holds recordsPerCall records per call in flight; and the metrics are registered where
// Options says, or in a registry of the member's own.
func TestNewWiresTheGroup(t *testing.T) {
	cfg := grouptest.Parse(t, grouptest.Kafka([]string{"127.0.0.1:1"}, "p.")+`consumers:
  retries:
    group: "p.retries"
    concurrency: 3
    delays: ["1m", "5m", "30m"]
    action:
      url: "http://127.0.0.1:1/v1/posts/{post_id}/retry"
`)
	reg := consumers.NewRegistry()
	m, err := New(context.Background(), cfg, slog.New(slog.DiscardHandler), Options{Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	wantReads := []string{"p.post.failed", "p.post.failed.retry.1", "p.post.failed.retry.2", "p.post.failed.retry.3"}
	if !slices.Equal(m.Reads, wantReads) {
		t.Errorf("reads %v, want %v", m.Reads, wantReads)
	}
	h := m.Handler.(*handler)
	for i, topic := range wantReads {
		if got, ok := h.stage[topic]; !ok || got != i {
			t.Errorf("stage of %s = %d (%v), want %d", topic, got, ok, i)
		}
	}
	if len(h.stage) != len(wantReads) {
		t.Errorf("stages %v, want one per topic read", h.stage)
	}
	if want := []time.Duration{time.Minute, 5 * time.Minute, 30 * time.Minute}; !slices.Equal(h.delays, want) {
		t.Errorf("delays %v, want %v", h.delays, want)
	}
	if h.workers != 3 || m.MaxRecords != 3*recordsPerCall {
		t.Errorf("workers %d, batch %d records; want 3 and %d", h.workers, m.MaxRecords, 3*recordsPerCall)
	}
	if m.Registry != reg {
		t.Error("the metrics are not in Options.Registry")
	}
	own, err := New(context.Background(), cfg, slog.New(slog.DiscardHandler), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if own.Registry == nil || own.Registry == reg {
		t.Error("without Options.Registry the member has no registry of its own")
	}
}
