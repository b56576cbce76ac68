package spool_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/bridge/dedup"
	"github.com/socialbridge/bridge/bridge/spool"
)

// TestReopenAndDrain: records appended are read back after a restart in spool order, and the
// drainer produces each once, as the ingress made it (topic, key, value, headers with nil and
// empty values told apart, timestamp), in order per source; then the files are deleted.
func TestReopenAndDrain(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, func(o *spool.Options) { o.SegmentBytes = 4 << 10 })
	var want []*kgo.Record
	for i := range 60 {
		rec := record(sources[i%2], fmt.Sprintf("evt_%02d", i), i)
		if i%5 == 0 {
			rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: dedup.KeyHeader, Value: fmt.Appendf(nil, "digest-%d", i)})
		}
		if err := s.Append(rec); err != nil {
			t.Fatal(err)
		}
		want = append(want, rec)
	}
	if st := s.Stats(); st.Segments < 3 || st.Records != 60 || st.Syncs != 60 {
		t.Fatalf("after 60 appends one at a time: %+v; want several segments, 60 records, 60 syncs", st)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(t, dir, func(o *spool.Options) { o.SegmentBytes = 4 << 10 })
	marks := s.Marks()
	if len(marks) != 60 {
		t.Fatalf("%d marks read back, want 60", len(marks))
	}
	for i, m := range marks {
		key := fmt.Sprintf("evt_%02d", i)
		if i%5 == 0 {
			key = fmt.Sprintf("digest-%d", i)
		}
		if m.Source != sources[i%2] || m.Key != key || !m.At.Equal(want[i].Timestamp) || m.Unverified {
			t.Errorf("mark %d: %+v; want %s/%s at %v", i, m, sources[i%2], key, want[i].Timestamp)
		}
	}
	if err := s.Reconcile(context.Background(), nothingInKafka); err != nil {
		t.Fatal(err)
	}
	p := newProducer()
	drain(t, s, p)
	waitEmpty(t, s)
	got := p.records()
	if len(got) != 60 {
		t.Fatalf("%d records produced, want 60", len(got))
	}
	next := map[string]int{}
	byKey := map[string]*kgo.Record{}
	for _, r := range want {
		byKey[string(r.Key)] = r
	}
	for _, r := range got {
		w := byKey[string(r.Key)]
		if err := sameRecord(r, w); err != nil {
			t.Errorf("%s: %v", r.Key, err)
		}
		var i int
		fmt.Sscanf(string(r.Key), "evt_%d", &i)
		src := sources[i%2]
		if i < next[src] {
			t.Errorf("%s produced after a later record of %s", r.Key, src)
		}
		next[src] = i
	}
	if n := dirBytes(t, dir); n != 0 {
		t.Errorf("%d bytes of segment files left after the drain", n)
	}
}

func nothingInKafka(context.Context, []string, time.Time, func(*kgo.Record)) error { return nil }

// TestTornLastWrite cuts the newest segment at every byte of its last frame, as a crash in
// the middle of a write would leave it: the spool opens with every whole record, cuts the rest,
// and appends after them.
func TestTornLastWrite(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, nil)
	for i := range 5 {
		if err := s.Append(record("postiz", fmt.Sprintf("evt_%d", i), i)); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	s = open(t, dir, nil) // the last record goes to a segment of its own
	s.Marks()
	if err := s.Append(record("x", "evt_last", 5)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	seg := newestNonEmpty(t, dir)
	whole, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	for cut := range len(whole) {
		tdir := t.TempDir()
		copyDir(t, dir, tdir)
		if err := os.Truncate(newestNonEmpty(t, tdir), int64(cut)); err != nil && cut > 0 {
			t.Fatal(err)
		}
		s := open(t, tdir, nil)
		if n := len(s.Marks()); n != 5 {
			t.Fatalf("cut at byte %d of %d: %d records read back, want the 5 whole ones", cut, len(whole), n)
		}
		if err := s.Append(record("x", "evt_after", 6)); err != nil {
			t.Fatalf("cut at %d: append after recovery: %v", cut, err)
		}
		s.Close()
		s = open(t, tdir, nil)
		if n := len(s.Marks()); n != 6 {
			t.Fatalf("cut at %d: after an append past the recovered end, %d records read back, want 6", cut, n)
		}
		s.Close()
	}
	// Garbage past the end (a file grown but not written, as a crash can leave it on ext4).
	f, err := os.OpenFile(seg, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(make([]byte, 4096))
	f.Close()
	s = open(t, dir, nil)
	if n := len(s.Marks()); n != 6 {
		t.Fatalf("zeros after the last frame: %d records read back, want 6", n)
	}
}

// TestCorruptFrame flips a byte inside the last record: its CRC fails, and it is dropped as a
// torn write would be; the records before it are kept.
func TestCorruptFrame(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, nil)
	for i := range 3 {
		if err := s.Append(record("postiz", fmt.Sprintf("evt_%d", i), i)); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	seg := newestNonEmpty(t, dir)
	b, _ := os.ReadFile(seg)
	b[len(b)-3] ^= 0xff
	os.WriteFile(seg, b, 0o600)
	s = open(t, dir, nil)
	if n := len(s.Marks()); n != 2 {
		t.Fatalf("%d records read back, want 2 (the third's CRC fails)", n)
	}
}

// TestGroupCommit: appends that arrive while an fsync is under way share the next one.
func TestGroupCommit(t *testing.T) {
	release := make(chan struct{})
	var first sync.Once
	s := open(t, t.TempDir(), func(o *spool.Options) {
		o.Sync = func(f *os.File) error {
			if fi, _ := f.Stat(); fi != nil && !fi.IsDir() {
				first.Do(func() { <-release })
			}
			return f.Sync()
		}
	})
	const n = 32
	errs := make(chan error, n)
	go func() { errs <- s.Append(record("postiz", "evt_first", 0)) }()
	waitRecords(t, s, 1)
	for i := 1; i < n; i++ {
		go func() { errs <- s.Append(record("x", fmt.Sprintf("evt_%d", i), i)) }()
	}
	waitRecords(t, s, n) // all queued behind the first fsync, which is held
	close(release)
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if st := s.Stats(); st.Syncs != 2 || st.Appended != n {
		t.Fatalf("%+v; want %d appends in 2 syncs: the first, and one for the %d that waited", st, n, n-1)
	}
}

func waitRecords(t *testing.T, s *spool.Spool, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for s.Stats().Records < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d records in the spool, want %d", s.Stats().Records, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestMaxBytes: past its bound the spool refuses records (ErrFull) and says it has no room;
// once drained it takes them again.
func TestMaxBytes(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, func(o *spool.Options) { o.MaxBytes = 64 << 10 })
	n := 0
	var err error
	for ; n < 1000; n++ {
		if err = s.Append(record("postiz", fmt.Sprintf("evt_%d", n), n)); err != nil {
			break
		}
	}
	if !errors.Is(err, spool.ErrFull) || n < 50 {
		t.Fatalf("after %d appends: %v; want ErrFull past 64 KiB", n, err)
	}
	if err := s.Room(1024); !errors.Is(err, spool.ErrFull) {
		t.Errorf("Room when full: %v", err)
	}
	if b := dirBytes(t, dir); b > 64<<10 {
		t.Errorf("%d bytes on disk, over the bound", b)
	}
	p := newProducer()
	drain(t, s, p)
	waitEmpty(t, s)
	if err := s.Room(1024); err != nil {
		t.Errorf("Room once drained: %v", err)
	}
	if err := s.Append(record("postiz", "evt_after", n+1)); err != nil {
		t.Fatalf("append once drained: %v", err)
	}
	p.waitFor(t, "evt_after")
}

// TestDuplicate: a record whose (source, dedup key) is spooled and not drained is refused as a
// duplicate; once drained it is not the spool's to refuse.
func TestDuplicate(t *testing.T) {
	s := open(t, t.TempDir(), nil)
	if err := s.Append(record("postiz", "evt_1", 1)); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(record("postiz", "evt_1", 2)); !errors.Is(err, spool.ErrDuplicate) {
		t.Fatalf("second append of evt_1: %v, want ErrDuplicate", err)
	}
	if !s.Has("postiz", "evt_1") || s.Has("x", "evt_1") {
		t.Fatal("Has: want postiz/evt_1 only")
	}
	if err := s.Append(record("x", "evt_1", 3)); err != nil {
		t.Fatalf("evt_1 of another source: %v", err)
	}
	p := newProducer()
	drain(t, s, p)
	waitEmpty(t, s)
	if s.Has("postiz", "evt_1") {
		t.Fatal("Has after the drain")
	}
}

// TestHolding: a source holds while it has records spooled, and every source while Kafka is
// known to be down, until the drainer gets a record through.
func TestHolding(t *testing.T) {
	s := open(t, t.TempDir(), nil)
	if s.Holding("postiz") {
		t.Fatal("an empty spool holds")
	}
	if err := s.Append(record("postiz", "evt_1", 1)); err != nil {
		t.Fatal(err)
	}
	if !s.Holding("postiz") || s.Holding("x") {
		t.Fatal("want postiz holding, x not")
	}
	s.KafkaDown()
	if !s.Holding("x") {
		t.Fatal("x not holding while kafka is down")
	}
	p := newProducer()
	drain(t, s, p)
	waitEmpty(t, s)
	if s.Holding("postiz") || s.Holding("x") {
		t.Fatal("holding once a record got through and the spool is empty")
	}
}

// TestDrainRetriesInOrder: while Kafka fails the drainer produces nothing, keeps every
// record, and once Kafka takes them produces each once, in order per source.
func TestDrainRetriesInOrder(t *testing.T) {
	s := open(t, t.TempDir(), nil)
	p := newProducer()
	p.setFailing(true)
	s.KafkaDown()
	drain(t, s, p)
	for i := range 20 {
		if err := s.Append(record(sources[i%2], fmt.Sprintf("evt_%02d", i), i)); err != nil {
			t.Fatal(err)
		}
	}
	p.setFailing(false)
	waitEmpty(t, s)
	got := p.records()
	if len(got) != 20 {
		t.Fatalf("%d produced, want 20", len(got))
	}
	last := map[string]string{}
	for _, r := range got {
		src := string(r.Headers[1].Value)
		if string(r.Key) < last[src] {
			t.Errorf("%s after %s", r.Key, last[src])
		}
		last[src] = string(r.Key)
	}
}
