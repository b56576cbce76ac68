package spool_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/bridge/dedup"
	"github.com/socialbridge/bridge/bridge/spool"
	"github.com/socialbridge/bridge/internal/testkit"
)

var sources = []string{"postiz", "x"}

func open(t *testing.T, dir string, change func(*spool.Options)) *spool.Spool {
	t.Helper()
	o := spool.Options{MaxBytes: 64 << 20, Sources: sources}
	if change != nil {
		change(&o)
	}
	s, err := spool.Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var received = time.Date(2026, 5, 8, 14, 0, 0, 0, time.UTC)

// record is a record as the ingress makes it, of source with event id id.
func record(source, id string, i int) *kgo.Record {
	at := received.Add(time.Duration(i) * time.Millisecond)
	return &kgo.Record{
		Topic:     "social.post.published",
		Key:       []byte(id),
		Value:     fmt.Appendf(nil, "\xc3\x01avro-%s-%d", id, i),
		Timestamp: at,
		Headers: []kgo.RecordHeader{
			{Key: "event-type", Value: []byte("post.published")},
			{Key: "source", Value: []byte(source)},
			{Key: "provider", Value: []byte(source)},
			{Key: "received-at", Value: at.AppendFormat(nil, time.RFC3339Nano)},
			{Key: "traceparent", Value: []byte("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")},
			{Key: "empty", Value: []byte{}},
			{Key: "null"},
		},
	}
}

// sameRecord reports how got differs from want in what the ingress sets.
func sameRecord(got, want *kgo.Record) error {
	switch {
	case got.Topic != want.Topic || string(got.Key) != string(want.Key) || string(got.Value) != string(want.Value):
		return fmt.Errorf("topic/key/value %s/%s/%q, want %s/%s/%q", got.Topic, got.Key, got.Value, want.Topic, want.Key, want.Value)
	case !got.Timestamp.Equal(want.Timestamp):
		return fmt.Errorf("timestamp %v, want %v", got.Timestamp, want.Timestamp)
	case !reflect.DeepEqual(got.Headers, want.Headers):
		return fmt.Errorf("headers %q, want %q", got.Headers, want.Headers)
	}
	return nil
}

// producer records what the drainer produces. While failing is set it fails every record;
// gate, when set, holds each promise until it is closed.
type producer struct {
	mu       sync.Mutex
	recs     []*kgo.Record
	failing  bool
	produced chan string // the key of each record produced, if not nil
}

func newProducer() *producer { return &producer{produced: make(chan string, 1<<16)} }

func (p *producer) TryProduce(_ context.Context, r *kgo.Record, promise func(*kgo.Record, error)) {
	p.mu.Lock()
	failing := p.failing
	if !failing {
		p.recs = append(p.recs, r)
	}
	p.mu.Unlock()
	go func() {
		if failing {
			promise(r, errors.New("kafka is down"))
			return
		}
		p.produced <- string(r.Key)
		promise(r, nil)
	}()
}

func (p *producer) setFailing(v bool) {
	p.mu.Lock()
	p.failing = v
	p.mu.Unlock()
}

func (p *producer) records() []*kgo.Record {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*kgo.Record(nil), p.recs...)
}

// waitFor waits until the record keyed id is produced.
func (p *producer) waitFor(t *testing.T, ids ...string) {
	t.Helper()
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	timeout := time.After(30 * time.Second)
	for len(want) > 0 {
		select {
		case id := <-p.produced:
			delete(want, id)
		case <-timeout:
			t.Fatalf("not produced within 30 s: %v", want)
		}
	}
}

// drain runs s's drainer on p until the test ends.
func drain(t *testing.T, s *spool.Spool, p spool.Producer) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Drain(ctx, p, spool.DrainOptions{MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond})
	}()
	t.Cleanup(func() { cancel(); <-done })
}

// waitEmpty waits until s holds no record and its files are back to an empty segment.
func waitEmpty(t *testing.T, s *spool.Spool) {
	t.Helper()
	testkit.Eventually(t, 30*time.Second, "the spool drained and reclaimed", func() bool {
		st := s.Stats()
		return st.Records == 0 && st.Bytes == 0 && st.Segments == 1
	}, func() string { return fmt.Sprintf("%+v", s.Stats()) })
}

// dirBytes is the size of the segment files in dir.
func dirBytes(t *testing.T, dir string) int64 {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	var n int64
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		n += fi.Size()
	}
	return n
}

// reserver is a dedup.Reserver whose answers the test sets: ids in dups are duplicates.
type reserver struct {
	mu     sync.Mutex
	dups   map[string]bool
	marked []string
	err    error
}

var _ dedup.Reserver = (*reserver)(nil)

func (r *reserver) Reserve(_ context.Context, source, id string, _ time.Time) (bool, func(bool), error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return false, nil, r.err
	}
	if r.dups[source+"/"+id] {
		return true, nil, nil
	}
	return false, func(accepted bool) {
		r.mu.Lock()
		defer r.mu.Unlock()
		if accepted {
			r.marked = append(r.marked, source+"/"+id)
		}
	}, nil
}

// newestNonEmpty returns the path of dir's newest segment file that holds frames.
func newestNonEmpty(t *testing.T, dir string) string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	for i := len(files) - 1; i >= 0; i-- {
		if fi, err := os.Stat(files[i]); err == nil && fi.Size() > 0 {
			return files[i]
		}
	}
	t.Fatalf("no segment with frames in %s", dir)
	return ""
}

// copyDir copies the segment files of src to dst.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(src, "*.seg"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, filepath.Base(f)), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}
