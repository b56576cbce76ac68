package dedup_test

import (
	"cmp"
	"context"
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/bridge/dedup"
	"github.com/socialbridge/bridge/internal/kafkatest"
)

// TestSnapshotRoundTrip saves a Store and rebuilds another from the file alone: the ids within
// their source's window are duplicates again, those past it are not, a later mark of an id
// wins over its earlier one, and the new Store keeps each source's window as configured now.
func TestSnapshotRoundTrip(t *testing.T) {
	now := time.Now()
	s := dedup.New(window, 100, dedup.Options{Windows: map[string]time.Duration{"meta": 3 * window}})
	s.MarkSeen("acme", "old", now.Add(-window-time.Minute)) // past acme's window
	s.MarkSeen("acme", "a1", now.Add(-time.Minute))
	s.MarkSeen("meta", "m1", now.Add(-2*window)) // within meta's
	s.MarkSeen("acme", "again", now.Add(-2*window))
	s.MarkSeen("acme", "again", now.Add(-time.Second)) // superseded: the later mark counts
	path := filepath.Join(t.TempDir(), "dedup.snapshot")
	if n, err := s.WriteSnapshot(path, now); err != nil || n < 4 {
		t.Fatalf("WriteSnapshot: %d entries, %v", n, err)
	}

	fresh := dedup.New(window, 100, dedup.Options{Windows: map[string]time.Duration{"meta": 3 * window}, Rebuilding: true})
	st, err := dedup.Rebuild(context.Background(), nil, nil, now, fresh, dedup.RebuildOptions{Snapshot: path})
	if err != nil || st.SnapshotErr != nil || st.FromSnapshot == 0 || st.IDs != 3 {
		t.Fatalf("Rebuild from the snapshot: %+v, %v; want 3 ids", st, err)
	}
	if want := now.Add(-time.Minute); !st.Since.Equal(want) {
		t.Errorf("read Kafka since %v, want the copy's time less a minute, %v", st.Since, want)
	}
	fresh.Open()
	for id, want := range map[string]bool{"a1": true, "again": true, "old": false} {
		if dup := reserveAt(t, fresh, "acme", id, now); dup != want {
			t.Errorf("acme/%s: dup=%v, want %v", id, dup, want)
		}
	}
	if !reserveAt(t, fresh, "meta", "m1", now) {
		t.Error("meta/m1, within meta's window, is not a duplicate")
	}
}

// TestSnapshotUnusable: a missing, torn or foreign file is reported and not used.
func TestSnapshotUnusable(t *testing.T) {
	dir := t.TempDir()
	s := dedup.New(window, 100, dedup.Options{})
	s.MarkSeen("acme", "a1", time.Now())
	good := filepath.Join(dir, "good")
	if _, err := s.WriteSnapshot(good, time.Now()); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(good)
	torn := append([]byte(nil), raw[:len(raw)-9]...)
	flipped := append([]byte(nil), raw...)
	flipped[len(flipped)/2] ^= 0xff
	for name, b := range map[string][]byte{"torn": torn, "flipped": flipped, "foreign": []byte("hello, world: not a snapshot at all")} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"missing", "torn", "flipped", "foreign"} {
		fresh := dedup.New(window, 100, dedup.Options{})
		st, err := dedup.Rebuild(context.Background(), nil, nil, time.Now(), fresh, dedup.RebuildOptions{Snapshot: filepath.Join(dir, name)})
		if err != nil || st.SnapshotErr == nil || st.FromSnapshot != 0 || fresh.Len() != 0 {
			t.Errorf("%s: %+v, %v, Len %d; want the snapshot refused", name, st, err, fresh.Len())
		}
	}
	st, _ := dedup.Rebuild(context.Background(), nil, nil, time.Now(), dedup.New(window, 100, dedup.Options{}), dedup.RebuildOptions{Snapshot: filepath.Join(dir, "missing")})
	if !errors.Is(st.SnapshotErr, fs.ErrNotExist) {
		t.Errorf("missing: %v, want fs.ErrNotExist", st.SnapshotErr)
	}
}

// TestSnapshotCatchUp saves a Store while one delivery is still in flight, then rebuilds
// another from the snapshot and Kafka: the in-flight record, which reached Kafka after the
// copy with the older time of its receipt, and a record produced after the copy are found;
// a record older than what the snapshot covers is not read at all (the catch-up starts at the
// snapshot's time, not at the window's start).
func TestSnapshotCatchUp(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(kafkatest.Brokers(t)...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	topic := testTopic(t, kadm.NewClient(cl), 1)
	now := time.Now()
	s := dedup.New(window, 100, dedup.Options{})
	s.MarkSeen("acme", "before", now.Add(-20*time.Minute))
	_, done, _ := s.Reserve(ctx, "acme", "in-flight", now.Add(-10*time.Minute))
	path := filepath.Join(t.TempDir(), "dedup.snapshot")
	if _, err := s.WriteSnapshot(path, now); err != nil {
		t.Fatal(err)
	}
	done(true)
	rec := func(id string, at time.Time) *kgo.Record {
		return &kgo.Record{Topic: topic, Key: []byte(id), Timestamp: at, Headers: []kgo.RecordHeader{{Key: "source", Value: []byte("acme")}}}
	}
	// Not in the snapshot, and older than it covers: a rebuild from the snapshot cannot see it.
	if err := cl.ProduceSync(ctx, rec("unseen-old", now.Add(-30*time.Minute)), rec("in-flight", now.Add(-10*time.Minute)),
		rec("after", now.Add(time.Second))).FirstErr(); err != nil {
		t.Fatal(err)
	}

	fresh := dedup.New(window, 100, dedup.Options{})
	st, err := dedup.Rebuild(ctx, cl, []string{topic}, now.Add(2*time.Second), fresh, dedup.RebuildOptions{Snapshot: path})
	if err != nil || st.FromSnapshot != 1 || st.Records != 2 {
		t.Fatalf("Rebuild: %+v, %v; want 1 entry from the snapshot and 2 records from kafka", st, err)
	}
	for id, want := range map[string]bool{"before": true, "in-flight": true, "after": true, "unseen-old": false} {
		if dup := reserveAt(t, fresh, "acme", id, now.Add(2*time.Second)); dup != want {
			t.Errorf("%s: dup=%v, want %v", id, dup, want)
		}
	}
}

func reserveAt(t *testing.T, s dedup.Reserver, source, id string, at time.Time) bool {
	t.Helper()
	dup, done, err := s.Reserve(context.Background(), source, id, at)
	if err != nil {
		t.Fatal(err)
	}
	if done != nil {
		done(false)
	}
	return dup
}

// TestSnapshotAfterWindowChange saves a Store, then rebuilds one under a config that groups
// the sources differently: each id accepted within its source's window as configured now is
// a duplicate afterwards, whether the snapshot could hold it or Kafka has to be read again.
func TestSnapshotAfterWindowChange(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(kafkatest.Brokers(t)...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	cases := []struct {
		name        string
		before, now map[string]time.Duration // windows of their own
		ages        map[string]time.Duration // id of meta -> age of its record
		reread      bool                     // Kafka must be read beyond the snapshot's time
	}{
		{"own window out of the default group", nil, map[string]time.Duration{"meta": 2 * window},
			map[string]time.Duration{"m1": 10 * time.Minute}, true},
		{"own window made longer", map[string]time.Duration{"meta": 2 * window}, map[string]time.Duration{"meta": 3 * window},
			map[string]time.Duration{"m1": 10 * time.Minute, "m-old": 5 * window / 2}, true},
		{"default window made longer", nil, nil, map[string]time.Duration{"m1": 10 * time.Minute, "m-old": 3 * window / 2}, true},
		{"own window back into the default group", map[string]time.Duration{"meta": 2 * window}, nil,
			map[string]time.Duration{"m1": 10 * time.Minute}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			topic := testTopic(t, adm, 1)
			now := time.Now()
			before := dedup.New(window, 100, dedup.Options{Windows: c.before})
			var recs []*kgo.Record
			ids := slices.SortedFunc(maps.Keys(c.ages), func(a, b string) int { return cmp.Compare(c.ages[b], c.ages[a]) })
			for _, id := range ids { // oldest first, as they were accepted
				age := c.ages[id]
				before.MarkSeen("meta", id, now.Add(-age))
				recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(id), Timestamp: now.Add(-age),
					Headers: []kgo.RecordHeader{{Key: "source", Value: []byte("meta")}}})
			}
			before.MarkSeen("acme", "a1", now.Add(-5*time.Minute))
			reserveAt(t, before, "acme", "tick", now) // expires what lies past its windows, as serving does
			recs = append(recs, &kgo.Record{Topic: topic, Key: []byte("a1"), Timestamp: now.Add(-5 * time.Minute),
				Headers: []kgo.RecordHeader{{Key: "source", Value: []byte("acme")}}})
			if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "dedup.snapshot")
			if _, err := before.WriteSnapshot(path, now); err != nil {
				t.Fatal(err)
			}
			w := window
			if c.name == "default window made longer" {
				w = 2 * window
			}
			later := now.Add(time.Second)
			fresh := dedup.New(w, 100, dedup.Options{Windows: c.now, Rebuilding: true})
			st, err := dedup.Rebuild(ctx, cl, []string{topic}, later, fresh, dedup.RebuildOptions{Snapshot: path})
			if err != nil || st.SnapshotErr != nil {
				t.Fatalf("Rebuild: %+v, %v", st, err)
			}
			if reread := st.Since.Before(now.Add(-2 * time.Minute)); reread != c.reread {
				t.Errorf("read Kafka since %v (%s before the copy), reread=%v, want %v", st.Since, now.Sub(st.Since), reread, c.reread)
			}
			fresh.Open()
			for id := range c.ages {
				if !reserveAt(t, fresh, "meta", id, later) {
					t.Errorf("meta/%s, accepted within meta's window, is not a duplicate", id)
				}
			}
			if !reserveAt(t, fresh, "acme", "a1", later) {
				t.Error("acme/a1, accepted within acme's window, is not a duplicate")
			}
		})
	}
}

// TestSnapshotV1 reads a snapshot of the first format, which did not record the sources of
// the default group nor the windows: it is refused with a reason, and the whole window is
// read from Kafka.
func TestSnapshotV1(t *testing.T) {
	at := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC) // when testdata/snapshot-v1 was written
	s := dedup.New(time.Hour, 100, dedup.Options{Windows: map[string]time.Duration{"meta": 3 * time.Hour}, Rebuilding: true})
	st, err := dedup.Rebuild(context.Background(), nil, nil, at, s, dedup.RebuildOptions{Snapshot: "testdata/snapshot-v1"})
	if err != nil || st.SnapshotErr == nil || !strings.Contains(st.SnapshotErr.Error(), "older format") {
		t.Fatalf("Rebuild: %+v, %v; want the v1 snapshot refused as of an older format", st, err)
	}
	if want := at.Add(-3 * time.Hour); !st.Since.Equal(want) || s.Len() != 0 {
		t.Errorf("since %v with %d ids, want the whole window from %v and nothing from the file", st.Since, s.Len(), want)
	}
}
