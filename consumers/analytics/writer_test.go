package analytics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

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
	return newService(slog.New(slog.NewTextHandler(io.Discard, nil)), "test", st, maxBatch)
}

// assign gives s the partitions of topic "pub", as the group's callbacks do.
func assign(t *testing.T, s *Service, partitions ...int32) {
	t.Helper()
	s.assigned(t.Context(), nil, map[string][]int32{"pub": partitions})
	offsets := map[string]map[int32]kgo.Offset{"pub": {}}
	for _, p := range partitions {
		offsets["pub"][p] = kgo.NewOffset()
	}
	if _, err := s.startFromStore(t.Context(), offsets); err != nil {
		t.Fatal(err)
	}
}

// polled is a poll of the records of partitions of topic "pub", one after the other, tagged
// as received now and decoded.
func polled(s *Service, partitions ...[]store.Record) poll {
	var fetched []*kgo.Record
	var recs []store.Record
	for p, part := range partitions {
		for _, r := range part {
			fetched = append(fetched, &kgo.Record{Topic: "pub", Partition: int32(p), Offset: r.Offset})
		}
		recs = append(recs, part...)
	}
	p := s.received(fetched)
	copy(p.records, recs)
	return p
}

// publishedAt returns post.published records at offsets first to first+n-1.
func publishedAt(first int64, n int) []store.Record {
	out := make([]store.Record, n)
	for i := range out {
		out[i] = store.Record{Offset: first + int64(i), Kind: store.Published,
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
	assign(t, s, 0)
	polls := make(chan poll, 3)
	polls <- polled(s, publishedAt(0, 10))
	polls <- polled(s, publishedAt(10, 10))
	polls <- polled(s, publishedAt(20, 10))
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

// TestPollsOfAnEndedAssignmentAreDropped: the writer is behind, so polls wait; a partition
// is lost and given back, and read again from the database's offset. The polls of its old
// assignment are dropped, those of the new one and of the partitions kept are counted.
func TestPollsOfAnEndedAssignmentAreDropped(t *testing.T) {
	s := testService(t, 1000)
	assign(t, s, 0, 1)
	old := polled(s, publishedAt(0, 10), publishedAt(0, 5))
	s.revoked(t.Context(), nil, map[string][]int32{"pub": {0}})
	assign(t, s, 0)
	again := polled(s, publishedAt(0, 10))
	polls := make(chan poll, 2)
	polls <- old
	polls <- again
	w := &writer{s: s, polls: polls}
	if !w.gather(false) {
		t.Fatal("nothing gathered")
	}
	var got []string
	for _, r := range w.batch.runs {
		got = append(got, fmt.Sprintf("%d:%d-%d", r.Partition, r.Records[0].Offset, r.Records[len(r.Records)-1].Offset))
	}
	if strings.Join(got, " ") != "1:0-4 0:0-9" || w.batch.records != 15 {
		t.Errorf("batch of %d records in runs %v, want 15 in 1:0-4 0:0-9 (the old assignment's 0:0-9 dropped)", w.batch.records, got)
	}
}

// TestRunsSayWhereTheyWereReadFrom: each run is read from where the partition's assignment
// started (the database's offset) or where its last run ended, so offsets that held no
// record, such as transaction markers, are no gap to the store.
func TestRunsSayWhereTheyWereReadFrom(t *testing.T) {
	s := testService(t, 1000)
	assign(t, s, 0)
	first := polled(s, publishedAt(0, 5))
	afterMarkers := polled(s, publishedAt(7, 3)) // 5 and 6 were markers
	if f, m := first.runs[0].From, afterMarkers.runs[0].From; f != 0 || m != 5 {
		t.Fatalf("runs read from %d and %d, want 0 and 5", f, m)
	}
	polls := make(chan poll, 2)
	polls <- first
	polls <- afterMarkers
	close(polls)
	if err := (&writer{s: s, polls: polls}).run(t.Context()); err != nil {
		t.Fatal(err)
	}
	s.revoked(t.Context(), nil, map[string][]int32{"pub": {0}})
	assign(t, s, 0) // again: from the database's offset
	if p := polled(s, publishedAt(10, 1)); p.runs[0].From != 10 {
		t.Errorf("after the batch, the partition is read again from %d, want 10", p.runs[0].From)
	}
}

// TestAGapStopsTheWriter: a batch the store refuses for a gap is never retried and nothing
// after it is written; the writer returns the error, which stops the consumer.
func TestAGapStopsTheWriter(t *testing.T) {
	s := testService(t, 5)
	assign(t, s, 0)
	gap := polled(s, publishedAt(0, 5))
	gap.runs[0].From = 3 // as if a batch before it had been dropped
	polls := make(chan poll, 2)
	polls <- gap
	polls <- polled(s, publishedAt(5, 5))
	close(polls)
	if err := (&writer{s: s, polls: polls}).run(t.Context()); !errors.Is(err, store.ErrGap) {
		t.Fatalf("writer ended with %v, want ErrGap", err)
	}
	if offs, err := s.store.Offsets(t.Context()); err != nil || len(offs) != 0 {
		t.Errorf("offsets %v (%v) after the gap, want none", offs, err)
	}
}
