package dedup_test

import (
	"context"
	"errors"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/socialbridge/bridge/bridge/dedup"
)

const window = time.Hour

var base = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// step reserves (source, id) at base+at, expects dup, and when it owns the id calls done(accept).
type step struct {
	source, id string
	at         time.Duration
	wantDup    bool
	accept     bool
}

func TestReserve(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
	}{
		{"duplicate within window", []step{
			{"acme", "e1", 0, false, true},
			{"acme", "e1", time.Minute, true, false},
			{"acme", "e1", window - time.Nanosecond, true, false},
		}},
		{"expired after window", []step{
			{"acme", "e1", 0, false, true},
			{"acme", "e1", window, false, true},
			{"acme", "e1", 2*window - time.Nanosecond, true, false},
		}},
		{"release on failure", []step{
			{"acme", "e1", 0, false, false},
			{"acme", "e1", time.Second, false, false},
			{"acme", "e1", 2 * time.Second, false, true},
			{"acme", "e1", 3 * time.Second, true, false},
		}},
		{"sources are distinct", []step{
			{"acme", "e1", 0, false, true},
			{"codivupload", "e1", time.Second, false, true},
			{"acme", "e1", 2 * time.Second, true, false},
			{"codivupload", "e1", 3 * time.Second, true, false},
		}},
		{"source and id do not run together", []step{
			{"ab", "c", 0, false, true},
			{"a", "bc", time.Second, false, true},
			{"", "abc", 2 * time.Second, false, true},
		}},
		{"ids are distinct", []step{
			{"acme", "e1", 0, false, true},
			{"acme", "e2", 0, false, true},
			{"acme", "E1", 0, false, true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := dedup.New(window, 100)
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

func TestDoneTwiceIsNoOp(t *testing.T) {
	s := dedup.New(window, 100)
	ctx := context.Background()
	_, done1, _ := s.Reserve(ctx, "acme", "e1", base)
	done1(false)
	dup, done2, _ := s.Reserve(ctx, "acme", "e1", base)
	if dup {
		t.Fatal("released id is a duplicate")
	}
	done1(true) // must neither mark e1 seen nor end the second reservation
	if s.Len() != 0 {
		t.Fatalf("Len = %d after a stale done, want 0", s.Len())
	}
	waitCtx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, _, err := s.Reserve(waitCtx, "acme", "e1", base); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Reserve while the second owner holds e1: err = %v, want deadline exceeded", err)
	}
	done2(true)
	done2(false)
	if dup, _, _ := s.Reserve(ctx, "acme", "e1", base); !dup {
		t.Fatal("accepted id is not a duplicate after a repeated done(false)")
	}
}

// TestConcurrentOwners has 20 goroutines reserve one id; each owner fails until the
// acceptAt-th, which accepts. Owners must follow one another, never overlap.
func TestConcurrentOwners(t *testing.T) {
	const n = 20
	tests := []struct {
		name     string
		acceptAt int // the owner that accepts, counting from 1; 0: none does
	}{
		{"first owner accepts", 1},
		{"fifth owner accepts", 5},
		{"last owner accepts", n},
		{"every owner fails", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			owners, dups := reserveConcurrently(t, n, tt.acceptAt)
			wantOwners := tt.acceptAt
			if wantOwners == 0 {
				wantOwners = n
			}
			if owners != wantOwners || dups != n-wantOwners {
				t.Fatalf("owners=%d dups=%d, want %d and %d", owners, dups, wantOwners, n-wantOwners)
			}
		})
	}
}

func reserveConcurrently(t *testing.T, n, acceptAt int) (owners, dups int) {
	t.Helper()
	s := dedup.New(window, 100)
	var started sync.WaitGroup
	var holding, ownerCount, dupCount atomic.Int32
	started.Add(n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			started.Done()
			dup, done, err := s.Reserve(context.Background(), "acme", "e1", base)
			if err != nil {
				t.Error(err)
				return
			}
			if dup {
				dupCount.Add(1)
				return
			}
			if holding.Add(1) != 1 {
				t.Error("two owners hold the id at once")
			}
			started.Wait()
			time.Sleep(time.Millisecond) // let the others queue up behind this owner
			nth := ownerCount.Add(1)
			holding.Add(-1)
			done(int(nth) == acceptAt)
		})
	}
	wg.Wait()
	return int(ownerCount.Load()), int(dupCount.Load())
}

func TestCancelWhileWaiting(t *testing.T) {
	s := dedup.New(window, 100)
	_, done, _ := s.Reserve(context.Background(), "acme", "e1", base)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, _, err := s.Reserve(ctx, "acme", "e1", base)
		errc <- err
	}()
	time.Sleep(10 * time.Millisecond)
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	done(true)
	if dup, _, _ := s.Reserve(context.Background(), "acme", "e1", base); !dup {
		t.Fatal("id accepted after a waiter gave up is not a duplicate")
	}
}

func TestEviction(t *testing.T) {
	s := dedup.New(window, 3)
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
	s := dedup.New(window, 100)
	for i := range 10 {
		accept(t, s, strconv.Itoa(i), base)
	}
	accept(t, s, "late", base.Add(window))
	if s.Len() != 1 || s.Evicted() != 0 {
		t.Fatalf("Len=%d Evicted=%d after the window, want 1 and 0", s.Len(), s.Evicted())
	}
}

func TestMarkSeen(t *testing.T) {
	s := dedup.New(window, 100)
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
	s := dedup.New(window, 10)
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
	s := dedup.New(24*time.Hour, n)
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
		s := dedup.New(24*time.Hour, len(ids)/2)
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
		s := dedup.New(24*time.Hour, 1000)
		s.MarkSeen("codivupload", "evt_1", base)
		b.ReportAllocs()
		for b.Loop() {
			if dup, _, _ := s.Reserve(ctx, "codivupload", "evt_1", base); !dup {
				b.Fatal("not a duplicate")
			}
		}
	})
}

func accept(t *testing.T, s *dedup.Store, id string, at time.Time) {
	t.Helper()
	dup, done, err := s.Reserve(context.Background(), "acme", id, at)
	if dup || err != nil {
		t.Fatalf("Reserve %s: dup=%v err=%v", id, dup, err)
	}
	done(true)
}
