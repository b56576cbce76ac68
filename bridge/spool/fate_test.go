package spool_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/bridge/spool"
)

// The tests of this file hold the spool to "never produced twice" where an entry's fate is
// open: a first attempt still with franz-go, an entry read back after a restart, an entry
// spooled without a dedup reservation.

// TestPendingProducedByFranzGo: a record spooled while franz-go still holds it is left alone by
// the drainer, and so are its source's later records; franz-go getting it through ends it: the
// drainer never produces it.
func TestPendingProducedByFranzGo(t *testing.T) {
	s := open(t, t.TempDir(), nil)
	p := newProducer()
	drain(t, s, p)
	resolve, err := s.AppendPending(record("postiz", "evt_pending", 0))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Append(record("postiz", "evt_behind", 1)); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(record("x", "evt_other", 2)); err != nil {
		t.Fatal(err)
	}
	p.waitFor(t, "evt_other") // the drainer has run a batch with postiz's records in the spool
	if got := keysOf(p.records()); !slices.Equal(got, []string{"evt_other"}) {
		t.Fatalf("produced %v while postiz's first record is with franz-go; want only x's", got)
	}
	resolve(nil)
	p.waitFor(t, "evt_behind")
	waitEmpty(t, s)
	if got := keysOf(p.records()); !slices.Equal(got, []string{"evt_other", "evt_behind"}) {
		t.Fatalf("produced %v; evt_pending went through franz-go and must not be produced again", got)
	}
	resolve(errors.New("a second call")) // ignored
	if st := s.Stats(); st.Records != 0 || st.Drained != 2 {
		t.Fatalf("%+v", st)
	}
}

// TestPendingFailedByFranzGo: franz-go failing the record hands it to the drainer, which
// produces it before its source's later records.
func TestPendingFailedByFranzGo(t *testing.T) {
	s := open(t, t.TempDir(), nil)
	p := newProducer()
	drain(t, s, p)
	resolve, err := s.AppendPending(record("postiz", "evt_pending", 0))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Append(record("postiz", "evt_behind", 1)); err != nil {
		t.Fatal(err)
	}
	resolve(errors.New("record delivery timeout"))
	waitEmpty(t, s)
	if got := keysOf(p.records()); !slices.Equal(got, []string{"evt_pending", "evt_behind"}) {
		t.Fatalf("produced %v; want evt_pending once, then evt_behind", got)
	}
}

// TestRestartReconciles: after a restart, entries read back are produced only once Reconcile
// has looked for them in Kafka, and those found there never.
func TestRestartReconciles(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, nil)
	resolve, err := s.AppendPending(record("postiz", "evt_in_kafka", 0)) // franz-go got it through, then the process died
	if err != nil {
		t.Fatal(err)
	}
	_ = resolve
	for i, id := range []string{"evt_a", "evt_b"} {
		if err := s.Append(record("postiz", id, i+1)); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()

	s = open(t, dir, nil)
	p := newProducer()
	drain(t, s, p)
	if err := s.Append(record("x", "evt_marker", 3)); err != nil {
		t.Fatal(err)
	}
	p.waitFor(t, "evt_marker")
	if got := keysOf(p.records()); !slices.Equal(got, []string{"evt_marker"}) {
		t.Fatalf("produced %v before reconciling the records read back", got)
	}
	var since time.Time
	var topics []string
	err = s.Reconcile(context.Background(), func(_ context.Context, ts []string, at time.Time, keep func(*kgo.Record)) error {
		topics, since = ts, at
		keep(record("other", "evt_a", 9)) // same id, another source: not ours
		keep(record("postiz", "evt_in_kafka", 0))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(topics, []string{"social.post.published"}) || !since.Equal(received) {
		t.Errorf("scanned %v since %v; want social.post.published since the oldest arrival, %v", topics, since, received)
	}
	waitEmpty(t, s)
	if got := keysOf(p.records()); !slices.Equal(got, []string{"evt_marker", "evt_a", "evt_b"}) {
		t.Fatalf("produced %v; want evt_a and evt_b after the marker, evt_in_kafka never", got)
	}
}

// TestReconcileFailsThenRetries: a scan that fails leaves the entries in the spool.
func TestReconcileFailsThenRetries(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, nil)
	if err := s.Append(record("postiz", "evt_a", 0)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open(t, dir, nil)
	down := errors.New("kafka unreachable")
	if err := s.Reconcile(context.Background(), func(context.Context, []string, time.Time, func(*kgo.Record)) error { return down }); !errors.Is(err, down) {
		t.Fatalf("reconcile: %v", err)
	}
	if err := s.Reconcile(context.Background(), nothingInKafka); err != nil {
		t.Fatal(err)
	}
	p := newProducer()
	drain(t, s, p)
	p.waitFor(t, "evt_a")
}

// TestVerify: entries spooled without a dedup reservation are produced only once reserved; a
// duplicate is dropped; one whose store cannot be asked waits. Once verified, a restart does
// not ask again.
func TestVerify(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, nil)
	p := newProducer()
	drain(t, s, p)
	for i, id := range []string{"evt_dup", "evt_new"} {
		if err := s.AppendUnverified(record("postiz", id, i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Append(record("x", "evt_marker", 2)); err != nil {
		t.Fatal(err)
	}
	p.waitFor(t, "evt_marker")
	if got := keysOf(p.records()); !slices.Equal(got, []string{"evt_marker"}) {
		t.Fatalf("produced %v before verifying", got)
	}
	r := &reserver{dups: map[string]bool{"postiz/evt_dup": true}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Verify(ctx, r, time.Second)
	p.waitFor(t, "evt_new")
	waitEmpty(t, s)
	if got := keysOf(p.records()); !slices.Equal(got, []string{"evt_marker", "evt_new"}) {
		t.Fatalf("produced %v; want evt_new, never the duplicate", got)
	}
	if st := s.Stats(); st.Dropped != 1 {
		t.Errorf("dropped %d, want 1", st.Dropped)
	}
	r.mu.Lock()
	marked := r.marked
	r.mu.Unlock()
	if !slices.Equal(marked, []string{"postiz/evt_new"}) {
		t.Errorf("marked seen %v, want postiz/evt_new", marked)
	}
}

// TestVerifiedSurvivesRestart: an entry verified (its id then marked seen) is read back as
// verified: asking the store again would find its own mark and drop it.
func TestVerifiedSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, nil)
	if err := s.AppendUnverified(record("postiz", "evt_1", 0)); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendUnverified(record("postiz", "evt_2", 1)); err != nil {
		t.Fatal(err)
	}
	r := &reserver{err: nil, dups: map[string]bool{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Verify(ctx, r, time.Second); close(done) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r.mu.Lock()
		n := len(r.marked)
		r.mu.Unlock()
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("not verified")
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
	s.Close()
	s = open(t, dir, nil)
	for _, m := range s.Marks() {
		if m.Unverified {
			t.Errorf("%s read back unverified after it was verified", m.Key)
		}
	}
}

// TestCrashAnywhere runs appends (some pending, resolved either way at any moment), a drainer
// on a producer that fails now and then, and at a random point takes the spool's files as a
// crash would leave them (copied while the writer and the drainer run, so a last frame may be
// torn and acks missing); what the dead process produces after that is lost with it. The next
// round starts from that copy, reconciles with what "Kafka" has, and goes on. In the end every
// delivery answered before its round's crash is in Kafka exactly once.
func TestCrashAnywhere(t *testing.T) {
	dir := t.TempDir()
	k := &kafka{count: map[string]int{}}
	answered := map[string]bool{}
	rnd := rand.New(rand.NewPCG(7, 11))
	const rounds, per = 8, 60
	for round := range rounds + 1 {
		s := open(t, dir, nil)
		s.Marks()
		if err := s.Reconcile(context.Background(), k.scan); err != nil {
			t.Fatal(err)
		}
		p := &crashProducer{k: k, rnd: rand.New(rand.NewPCG(uint64(round), 3))}
		ctx, cancel := context.WithCancel(context.Background())
		drained := make(chan struct{})
		go func() {
			defer close(drained)
			s.Drain(ctx, p, spool.DrainOptions{MaxRecords: 7, MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond})
		}()
		if round == rounds {
			waitEmpty(t, s)
			cancel()
			<-drained
			break
		}
		crashAt, next := rnd.IntN(per), t.TempDir()
		for i := range per {
			if i == crashAt {
				crashImage(t, dir, next)
				p.die()
			}
			id := fmt.Sprintf("evt_%d_%02d", round, i)
			rec := record(sources[i%2], id, i)
			if i%4 == 0 {
				viaFranz := rnd.IntN(2) == 0 && i < crashAt
				if viaFranz {
					k.add(rec)
				}
				resolve, err := s.AppendPending(rec)
				if err != nil {
					t.Fatal(err)
				}
				go func() {
					if viaFranz {
						resolve(nil)
					} else {
						resolve(errors.New("record delivery timeout"))
					}
				}()
			} else if err := s.Append(rec); err != nil {
				t.Fatal(err)
			}
			if i < crashAt {
				answered[id] = true
			}
		}
		cancel()
		<-drained
		s.Close()
		dir = next
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	for id := range answered {
		if n := k.count[id]; n != 1 {
			t.Errorf("%s, answered spooled before a crash, is in kafka %d times", id, n)
		}
	}
	for id, n := range k.count {
		if !answered[id] && n > 0 {
			t.Errorf("%s is in kafka %d times but was never answered before a crash", id, n)
		}
	}
	if len(answered) < rounds*per/4 {
		t.Fatalf("only %d deliveries answered: the crash points are not spread", len(answered))
	}
}

// kafka is what the test's Kafka holds: how many times each id was produced.
type kafka struct {
	mu    sync.Mutex
	count map[string]int
	recs  []*kgo.Record
}

func (k *kafka) add(r *kgo.Record) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.count[string(r.Key)]++
	k.recs = append(k.recs, r)
}

func (k *kafka) scan(_ context.Context, _ []string, _ time.Time, keep func(*kgo.Record)) error {
	k.mu.Lock()
	recs := slices.Clone(k.recs)
	k.mu.Unlock()
	for _, r := range recs {
		keep(r)
	}
	return nil
}

// crashProducer puts records in k, failing some at random, until it dies with its process:
// from then on nothing reaches k.
type crashProducer struct {
	k    *kafka
	mu   sync.Mutex
	rnd  *rand.Rand
	dead bool
}

func (p *crashProducer) die() {
	p.mu.Lock()
	p.dead = true
	p.mu.Unlock()
}

func (p *crashProducer) TryProduce(_ context.Context, r *kgo.Record, promise func(*kgo.Record, error)) {
	p.mu.Lock()
	fail := p.dead || p.rnd.IntN(4) == 0
	p.mu.Unlock()
	if !fail {
		p.k.add(r)
	}
	go func() {
		if fail {
			promise(r, errors.New("not enough replicas"))
		} else {
			promise(r, nil)
		}
	}()
}

// crashImage copies the segment files of dir to to, as they are at this moment.
func crashImage(t *testing.T, dir, to string) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted since listed: drained
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, filepath.Base(f)), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func keysOf(recs []*kgo.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = string(r.Key)
	}
	return out
}
