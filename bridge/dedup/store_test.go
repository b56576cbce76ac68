package dedup_test

import (
	"context"
	"errors"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/socialbridge/bridge/bridge/dedup"
	"github.com/socialbridge/bridge/bridge/failure"
)

const window = time.Hour

var base = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func TestStoreConformance(t *testing.T) {
	testReserver(t, func(*testing.T) dedup.Reserver { return dedup.New(window, 100_000, dedup.Options{}) })
}

// at is a step of a memory store's test: reserve (source, id) at base+at, expect dup, and
// when it owns the id call done(accept). The memory store's clock is the time it is given.
type at struct {
	source, id string
	at         time.Duration
	wantDup    bool
	accept     bool
}

func TestWindows(t *testing.T) {
	tests := []struct {
		name    string
		windows map[string]time.Duration
		steps   []at
	}{
		{"duplicate within window", nil, []at{
			{"acme", "e1", 0, false, true},
			{"acme", "e1", time.Minute, true, false},
			{"acme", "e1", window - time.Nanosecond, true, false},
		}},
		{"expired after window", nil, []at{
			{"acme", "e1", 0, false, true},
			{"acme", "e1", window, false, true},
			{"acme", "e1", 2*window - time.Nanosecond, true, false},
		}},
		{"a source's own window", map[string]time.Duration{"meta": 3 * window}, []at{
			{"meta", "e1", 0, false, true},
			{"acme", "e1", 0, false, true},
			{"acme", "e1", window, false, true},
			{"meta", "e1", 3*window - time.Nanosecond, true, false},
			{"meta", "e1", 3 * window, false, true},
		}},
		{"a shorter window of a source", map[string]time.Duration{"x": window / 2}, []at{
			{"x", "e1", 0, false, true},
			{"x", "e1", window / 2, false, true},
			{"acme", "e1", window / 2, false, true},
			{"acme", "e1", window - time.Nanosecond, true, false},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := dedup.New(window, 100, dedup.Options{Windows: tt.windows})
			for i, st := range tt.steps {
				dup, done, err := s.Reserve(context.Background(), st.source, st.id, base.Add(st.at))
				if err != nil || dup != st.wantDup || (done == nil) != dup {
					t.Fatalf("step %d %+v: dup=%v done!=nil=%v err=%v", i, st, dup, done != nil, err)
				}
				if done != nil {
					done(st.accept)
				}
			}
		})
	}
}

// TestStaleDoneKeepsNothing: a done called after a later reservation of the same id must not
// mark the id seen.
func TestStaleDoneKeepsNothing(t *testing.T) {
	s := dedup.New(window, 100, dedup.Options{})
	_, done1, _ := s.Reserve(context.Background(), "acme", "e1", base)
	done1(false)
	_, done2, _ := s.Reserve(context.Background(), "acme", "e1", base)
	done1(true)
	if s.Len() != 0 {
		t.Fatalf("Len = %d after a stale done, want 0", s.Len())
	}
	done2(true)
	if s.Len() != 1 {
		t.Fatalf("Len = %d after done, want 1", s.Len())
	}
}

// TestRebuildingWaitsForOpen: a Store being rebuilt answers nothing until Open, so that no
// delivery is accepted before the window's ids are known; a delivery waiting for it gives up
// with its context, as a 503.
func TestRebuildingWaitsForOpen(t *testing.T) {
	s := dedup.New(window, 100, dedup.Options{Rebuilding: true})
	s.MarkSeen("acme", "e1", base) // as Rebuild does
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, _, err := s.Reserve(ctx, "acme", "e2", base)
	if failure.KindOf(err) != failure.Unavailable || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Reserve before Open: err = %v, want an Unavailable failure", err)
	}
	got := make(chan bool, 1)
	w := watch(context.Background())
	go func() {
		dup, _, err := s.Reserve(w, "acme", "e1", base.Add(time.Minute))
		got <- dup && err == nil
	}()
	select {
	case <-w.waiting: // the waiter is in its wait for Open
	case <-got:
		t.Fatal("Reserve answered before Open")
	}
	select {
	case <-got:
		t.Fatal("Reserve answered before Open")
	default:
	}
	s.Open()
	s.Open()
	if !<-got {
		t.Fatal("after Open, an id rebuilt before is not a duplicate")
	}
}

func TestEviction(t *testing.T) {
	s := dedup.New(window, 3, dedup.Options{})
	for i, id := range []string{"a", "b", "c", "d"} {
		accept(t, s, id, base.Add(time.Duration(i)*time.Second))
	}
	if s.Len() != 3 || s.Evicted() != 1 {
		t.Fatalf("Len=%d Evicted=%d, want 3 and 1", s.Len(), s.Evicted())
	}
	for _, id := range []string{"b", "c", "d"} {
		if dup, _, _ := s.Reserve(context.Background(), "acme", id, base.Add(time.Minute)); !dup {
			t.Fatalf("%s: not a duplicate", id)
		}
	}
	accept(t, s, "a", base.Add(time.Minute)) // the oldest was evicted; accepting it evicts b
	if s.Evicted() != 2 {
		t.Fatalf("Evicted=%d, want 2", s.Evicted())
	}
}

func TestExpiryShrinksStore(t *testing.T) {
	s := dedup.New(window, 100, dedup.Options{})
	for i := range 10 {
		accept(t, s, strconv.Itoa(i), base)
	}
	accept(t, s, "late", base.Add(window))
	if s.Len() != 1 || s.Evicted() != 0 {
		t.Fatalf("Len=%d Evicted=%d after the window, want 1 and 0", s.Len(), s.Evicted())
	}
}

func TestMarkSeen(t *testing.T) {
	s := dedup.New(window, 100, dedup.Options{})
	s.MarkSeen("acme", "e1", base)
	s.MarkSeen("acme", "e1", base.Add(-time.Minute)) // older: keeps base
	for _, c := range []struct {
		at   time.Duration
		want bool
	}{{window - time.Nanosecond, true}, {window, false}} {
		dup, done, _ := s.Reserve(context.Background(), "acme", "e1", base.Add(c.at))
		if dup != c.want {
			t.Fatalf("at base+%v: dup=%v, want %v", c.at, dup, c.want)
		}
		if done != nil {
			done(false)
		}
	}
}

// TestMarkSeenAgainBounded marks the same ids over and over: superseded FIFO entries must
// not pile up, and the latest time wins.
func TestMarkSeenAgainBounded(t *testing.T) {
	s := dedup.New(window, 10, dedup.Options{})
	for i := range 100_000 {
		s.MarkSeen("acme", strconv.Itoa(i%10), base.Add(time.Duration(i)))
	}
	if s.Len() != 10 || s.Evicted() != 0 {
		t.Fatalf("Len=%d Evicted=%d, want 10 and 0", s.Len(), s.Evicted())
	}
	if dup, _, _ := s.Reserve(context.Background(), "acme", "3", base.Add(window)); !dup {
		t.Fatal("an id marked again late expired with its first mark")
	}
}

func TestMemoryPerID(t *testing.T) {
	if testing.Short() {
		t.Skip("inserts 1,000,000 ids")
	}
	const n = 1_000_000
	ids := make([]string, n)
	for i := range ids {
		ids[i] = "evt_" + strconv.Itoa(i)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s := dedup.New(24*time.Hour, n, dedup.Options{})
	for i, id := range ids {
		s.MarkSeen("codivupload", id, base.Add(time.Duration(i)))
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if s.Len() != n {
		t.Fatalf("Len = %d, want %d", s.Len(), n)
	}
	perID := float64(after.HeapAlloc-before.HeapAlloc) / n
	t.Logf("%.1f bytes per remembered id (%d ids)", perID, n)
	if perID > 128 {
		t.Errorf("%.1f bytes per id: the doc comment says about 81", perID)
	}
	runtime.KeepAlive(s)
	runtime.KeepAlive(ids) // else they are freed between the two readings
}

func BenchmarkReserve(b *testing.B) {
	ctx := context.Background()
	b.Run("new", func(b *testing.B) {
		ids := make([]string, 1<<16)
		for i := range ids {
			ids[i] = "evt_" + strconv.Itoa(i)
		}
		// Ids come back only after maxIDs newer ones have evicted them, so each is new.
		s := dedup.New(24*time.Hour, len(ids)/2, dedup.Options{})
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			dup, done, err := s.Reserve(ctx, "codivupload", ids[i&(len(ids)-1)], base.Add(time.Duration(i)))
			if dup || err != nil {
				b.Fatal(dup, err)
			}
			done(true)
		}
	})
	b.Run("duplicate", func(b *testing.B) {
		s := dedup.New(24*time.Hour, 1000, dedup.Options{})
		s.MarkSeen("codivupload", "evt_1", base)
		b.ReportAllocs()
		for b.Loop() {
			if dup, _, _ := s.Reserve(ctx, "codivupload", "evt_1", base); !dup {
				b.Fatal("not a duplicate")
			}
		}
	})
}

// TestEvictionAcrossSources: with several windows, the oldest id of any source goes first.
func TestEvictionAcrossSources(t *testing.T) {
	s := dedup.New(window, 3, dedup.Options{Windows: map[string]time.Duration{"meta": 2 * window}})
	s.MarkSeen("meta", "m1", base)
	s.MarkSeen("acme", "a1", base.Add(time.Second))
	s.MarkSeen("meta", "m2", base.Add(2*time.Second))
	s.MarkSeen("acme", "a2", base.Add(3*time.Second))
	if s.Len() != 3 || s.Evicted() != 1 {
		t.Fatalf("Len=%d Evicted=%d, want 3 and 1", s.Len(), s.Evicted())
	}
	for _, c := range []struct {
		source, id string
		want       bool
	}{{"meta", "m1", false}, {"acme", "a1", true}, {"meta", "m2", true}, {"acme", "a2", true}} {
		dup, done, _ := s.Reserve(context.Background(), c.source, c.id, base.Add(time.Minute))
		if dup != c.want {
			t.Errorf("%s/%s: dup=%v, want %v", c.source, c.id, dup, c.want)
		}
		if done != nil {
			done(false)
		}
	}
}

func accept(t *testing.T, s *dedup.Store, id string, at time.Time) {
	t.Helper()
	dup, done, err := s.Reserve(context.Background(), "acme", id, at)
	if dup || err != nil {
		t.Fatalf("Reserve %s: dup=%v err=%v", id, dup, err)
	}
	done(true)
}

// TestTryReserve: TryReserve answers as Reserve does when nothing would make it wait, and
// reserves nothing when something would (the store not open, the id in flight).
func TestTryReserve(t *testing.T) {
	s := dedup.New(window, 100, dedup.Options{Rebuilding: true})
	if _, done, ok := s.TryReserve("acme", "e1", base); ok || done != nil {
		t.Fatal("TryReserve answered before Open")
	}
	s.Open()
	dup, done, ok := s.TryReserve("acme", "e1", base)
	if !ok || dup || done == nil {
		t.Fatalf("a new id: dup %v, done %v, ok %v; want the reservation", dup, done != nil, ok)
	}
	if _, again, ok := s.TryReserve("acme", "e1", base); ok || again != nil {
		t.Fatal("TryReserve answered for an id in flight")
	}
	done(true)
	if dup, _, ok := s.TryReserve("acme", "e1", base.Add(time.Minute)); !ok || !dup {
		t.Fatalf("an accepted id: dup %v, ok %v; want a duplicate", dup, ok)
	}
	if dup, _, err := s.Reserve(context.Background(), "acme", "e1", base.Add(time.Minute)); err != nil || !dup {
		t.Fatalf("Reserve after TryReserve's acceptance: dup %v, err %v", dup, err)
	}
	_, done, _ = s.TryReserve("acme", "e2", base)
	done(false)
	if dup, done, ok := s.TryReserve("acme", "e2", base); !ok || dup || done == nil {
		t.Fatalf("a released id: dup %v, ok %v; want it reservable again", dup, ok)
	}
}
