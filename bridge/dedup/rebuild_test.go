package dedup_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/bridge/dedup"
	"github.com/socialbridge/bridge/internal/kafkatest"
)

// testTopic creates a topic with a name unique to this run, ready to produce to.
func testTopic(t *testing.T, adm *kadm.Client, partitions int32) string {
	t.Helper()
	name := fmt.Sprintf("dedup-%s-%d", strings.ReplaceAll(t.Name(), "/", "-"), time.Now().UnixNano())
	kafkatest.CreateTopic(t, adm, name, partitions)
	return name
}

func TestRebuild(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(kafkatest.Brokers(t)...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	published, failed := testTopic(t, adm, 2), testTopic(t, adm, 1)
	empty := testTopic(t, adm, 1)

	now := time.Now()
	recs := []struct {
		topic      string
		partition  int32
		source, id string
		age        time.Duration
	}{
		{published, 0, "acme", "old-1", 2 * window},
		{published, 0, "acme", "old-2", window + time.Minute},
		{published, 0, "acme", "new-1", window - time.Minute},
		{published, 0, "", "no-source", 30 * time.Minute},
		{published, 0, "acme", "", 30 * time.Minute},
		{published, 0, "acme", "new-2", 10 * time.Minute},
		{published, 0, "acme", "late-old", window + time.Hour}, // older than the start, written after it
		{published, 1, "acme", "old-3", window + time.Second},
		{published, 1, "codivupload", "new-1", 5 * time.Minute},
		{published, 1, "acme", "new-3", time.Minute},
		{failed, 0, "acme", "new-4", time.Second},
		{failed, 0, "acme", "new-2", time.Second}, // the same id twice counts once
	}
	var batch []*kgo.Record
	for _, r := range recs {
		rec := &kgo.Record{Topic: r.topic, Partition: r.partition, Timestamp: now.Add(-r.age), Value: []byte("{}")}
		if r.id != "" {
			rec.Key = []byte(r.id)
		}
		if r.source != "" {
			rec.Headers = []kgo.RecordHeader{{Key: "event-type", Value: []byte("post.published")}, {Key: "source", Value: []byte(r.source)}}
		}
		batch = append(batch, rec)
	}
	if err := cl.ProduceSync(ctx, batch...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	s := dedup.New(window, 1000, dedup.Options{})
	var read, total int64
	st, err := dedup.Rebuild(ctx, cl, []string{published, failed, empty, "dedup-no-such-topic"}, now, s,
		dedup.RebuildOptions{Progress: func(r, t int64) { read, total = r, t }})
	n := st.IDs
	if err != nil {
		t.Fatal(err)
	}
	if n != 5 || s.Len() != 5 {
		t.Fatalf("restored %d, Len %d, want 5", n, s.Len())
	}
	// From the first record within the window: partition 0 from new-1 (5 records), 1 from
	// codivupload/new-1 (2), failed (2).
	if read != 9 || total != 9 {
		t.Errorf("progress: read %d of %d, want 9 of 9", read, total)
	}
	for _, c := range []struct {
		source, id string
		want       bool
	}{
		{"acme", "new-1", true}, {"acme", "new-2", true}, {"acme", "new-3", true}, {"acme", "new-4", true},
		{"codivupload", "new-1", true},
		{"acme", "old-1", false}, {"acme", "old-2", false}, {"acme", "old-3", false}, {"acme", "late-old", false},
		{"acme", "no-source", false}, {"codivupload", "new-3", false},
	} {
		if dup, _, err := s.Reserve(ctx, c.source, c.id, now); dup != c.want || err != nil {
			t.Errorf("%s/%s: dup=%v err=%v, want dup=%v", c.source, c.id, dup, err, c.want)
		}
	}
}

func TestRebuildNothingToRead(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(kafkatest.Brokers(t)...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for _, topics := range [][]string{nil, {"dedup-no-such-topic"}} {
		s := dedup.New(window, 10, dedup.Options{})
		if st, err := dedup.Rebuild(ctx, cl, topics, time.Now(), s, dedup.RebuildOptions{}); st.IDs != 0 || err != nil || s.Len() != 0 {
			t.Errorf("topics %q: n=%d err=%v Len=%d", topics, st.IDs, err, s.Len())
		}
	}
}

func TestRebuildStopsWithContext(t *testing.T) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(kafkatest.Brokers(t)...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := dedup.Rebuild(ctx, cl, []string{"dedup-any"}, time.Now(), dedup.New(window, 10, dedup.Options{}), dedup.RebuildOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Rebuild with a cancelled context returned %v, want context.Canceled", err)
	}
}

// TestRebuildWindowsAndBound: each source's records are kept within its own window, and a
// window holding more ids than the Store may keep restores the newest of them.
func TestRebuildWindowsAndBound(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(kafkatest.Brokers(t)...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	topic := testTopic(t, kadm.NewClient(cl), 2)
	now := time.Now()
	var batch []*kgo.Record
	add := func(source, id string, p int32, age time.Duration) {
		batch = append(batch, &kgo.Record{Topic: topic, Partition: p, Key: []byte(id), Timestamp: now.Add(-age),
			Headers: []kgo.RecordHeader{{Key: "source", Value: []byte(source)}}})
	}
	add("meta", "meta-old", 0, 2*window)    // within meta's 3h window
	add("meta", "meta-gone", 0, 3*window+1) // not
	add("acme", "acme-old", 0, 2*window)    // outside acme's 1h window
	for i := range 10 {
		add("acme", fmt.Sprintf("acme-%d", i), int32(i%2), time.Duration(10-i)*time.Minute)
	}
	if err := cl.ProduceSync(ctx, batch...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	bounded := dedup.New(window, 5, dedup.Options{Windows: map[string]time.Duration{"meta": 3 * window}})
	roomy := dedup.New(window, 100, dedup.Options{Windows: map[string]time.Duration{"meta": 3 * window}})
	for _, c := range []struct {
		s    *dedup.Store
		n    int
		want []string
	}{
		{bounded, 5, []string{"acme-5", "acme-6", "acme-7", "acme-8", "acme-9"}},
		{roomy, 11, []string{"meta-old", "acme-0", "acme-4", "acme-5", "acme-9"}},
	} {
		if st, err := dedup.Rebuild(ctx, cl, []string{topic}, now, c.s, dedup.RebuildOptions{}); err != nil || st.IDs != c.n {
			t.Fatalf("Rebuild: n=%d err=%v, want %d ids", st.IDs, err, c.n)
		}
		want := map[string]bool{}
		for _, id := range c.want {
			want[id] = true
		}
		for _, id := range []string{"meta-old", "meta-gone", "acme-old", "acme-0", "acme-4", "acme-5", "acme-9"} {
			source, _, _ := strings.Cut(id, "-")
			dup, done, err := c.s.Reserve(ctx, source, id, now)
			if err != nil || dup != want[id] {
				t.Errorf("max %d: %s: dup=%v err=%v, want dup=%v", c.n, id, dup, err, want[id])
			}
			if done != nil {
				done(false)
			}
		}
	}
}

// TestRebuildKeyHeader restores the key a delivery was deduplicated on when the record names
// one (a content-keyed source's event, or its quarantined copy, which has no record key),
// instead of the record's key.
func TestRebuildKeyHeader(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(kafkatest.Brokers(t)...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	topic := testTopic(t, kadm.NewClient(cl), 1)
	now := time.Now()
	rec := func(key, dedupKey string) *kgo.Record {
		r := &kgo.Record{Topic: topic, Timestamp: now.Add(-time.Minute), Value: []byte("{}"),
			Headers: []kgo.RecordHeader{{Key: "source", Value: []byte("github")}}}
		if key != "" {
			r.Key = []byte(key)
		}
		if dedupKey != "" {
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: dedup.KeyHeader, Value: []byte(dedupKey)})
		}
		return r
	}
	if err := cl.ProduceSync(ctx, rec("d-1", "signed_1"), rec("", "signed_2"), rec("", "")).FirstErr(); err != nil {
		t.Fatal(err)
	}
	s := dedup.New(window, 1000, dedup.Options{})
	if st, err := dedup.Rebuild(ctx, cl, []string{topic}, now, s, dedup.RebuildOptions{}); err != nil || st.IDs != 2 {
		t.Fatalf("restored %d ids, err %v; want 2", st.IDs, err)
	}
	for id, want := range map[string]bool{"signed_1": true, "signed_2": true, "d-1": false} {
		if dup, _, err := s.Reserve(ctx, "github", id, now); dup != want || err != nil {
			t.Errorf("github/%s: dup=%v err=%v, want dup=%v", id, dup, err, want)
		}
	}
}

// TestRebuildReadsCommitted: the id of a record of an aborted transaction (a replay killed
// midway, or fenced) is not in Kafka and must not count as seen, or its next delivery
// would be refused as a duplicate and lost; one of a committed transaction counts. A
// transaction still open when the rebuild starts holds it back in no way (a read-committed
// fetch would wait for it, up to its timeout): its records are not counted, and the
// plain record written after them is.
func TestRebuildReadsCommitted(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	brokers := kafkatest.Brokers(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	topic := testTopic(t, kadm.NewClient(cl), 1)
	now := time.Now()
	rec := func(id string) *kgo.Record {
		return &kgo.Record{Topic: topic, Key: []byte(id), Timestamp: now.Add(-time.Minute), Value: []byte("{}"),
			Headers: []kgo.RecordHeader{{Key: "source", Value: []byte("acme")}}}
	}
	kafkatest.ProduceInTransaction(ctx, t, brokers, kafkatest.Abort, rec("aborted-1"), rec("aborted-2"))
	kafkatest.ProduceInTransaction(ctx, t, brokers, kafkatest.Commit, rec("committed-1"))
	open := kafkatest.ProduceInTransaction(ctx, t, brokers, kafkatest.LeaveOpen, rec("open-1"))
	defer func() { _ = open.EndTransaction(context.Background(), kgo.TryAbort) }()
	if err := cl.ProduceSync(ctx, rec("plain-1")).FirstErr(); err != nil {
		t.Fatal(err)
	}
	s := dedup.New(window, 1000, dedup.Options{})
	if st, err := dedup.Rebuild(ctx, cl, []string{topic}, now, s, dedup.RebuildOptions{}); err != nil || st.IDs != 2 {
		t.Fatalf("restored %d ids, err %v; want 2 (committed-1, plain-1)", st.IDs, err)
	}
	for id, want := range map[string]bool{"committed-1": true, "plain-1": true, "aborted-1": false, "aborted-2": false, "open-1": false} {
		if dup, _, err := s.Reserve(ctx, "acme", id, now); dup != want || err != nil {
			t.Errorf("acme/%s: dup=%v err=%v, want dup=%v", id, dup, err, want)
		}
	}
}
