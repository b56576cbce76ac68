package analytics

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/socialbridge/bridge/consumers/analytics/store"
)

// testService is the part of a Service that counts, on an SQLite database of the test's own,
// without Kafka: polls are handed to it directly.
func testService(t *testing.T, maxBatch int) *Service {
	t.Helper()
	st, err := store.Open(t.Context(), "sqlite:"+t.TempDir()+"/analytics.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &Service{log: slog.New(slog.NewTextHandler(io.Discard, nil)), group: "test", store: st,
		metrics: newMetrics("test"), commits: newKafkaCommits(), maxBatch: maxBatch, now: time.Now}
}

// publishedAt returns post.published records of partition 0 of topic "pub", offsets first to
// first+n-1.
func publishedAt(first int64, n int) []store.Record {
	out := make([]store.Record, n)
	for i := range out {
		out[i] = store.Record{Topic: "pub", Offset: first + int64(i), Kind: store.Published,
			OccurredAt: hour0, Platform: "instagram", Profile: "main"}
	}
	return out
}

// TestStopAfterTheFirstFailedBatch: once the consumer is stopping, the batches in hand are
// tried once each, in order, until one fails; the batches after it are not written, or the
// stored offset would pass the failed batch's records, which nobody would count.
func TestStopAfterTheFirstFailedBatch(t *testing.T) {
	s := testService(t, 10)
	attempts := 0
	s.beforeCommit = func() error {
		if attempts++; attempts == 2 {
			return errors.New("database gone")
		}
		return nil
	}
	polls := make(chan []store.Record, 3)
	polls <- publishedAt(0, 10)
	polls <- publishedAt(10, 10)
	polls <- publishedAt(20, 10)
	close(polls)
	ctx, cancel := context.WithCancel(t.Context())
	cancel() // stopping: the polls are the batches in hand
	(&writer{s: s, polls: polls}).run(ctx)

	offs, err := s.store.Offsets(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got := offs[store.TP{Topic: "pub"}]; got != 10 {
		t.Errorf("stored offset %d after the batch of offsets 10..19 failed, want 10", got)
	}
	totals, err := s.store.ByPlatform(t.Context(), store.Range{From: hour0, To: hour0.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if len(totals) != 1 || totals[0].Published != 10 {
		t.Errorf("counted %+v, want the first batch's 10 published", totals)
	}
}
