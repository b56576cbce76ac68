package dedup_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/socialbridge/bridge/bridge/dedup"
)

// testReserver is the conformance suite of the reservation protocol, run against every
// Reserver. newStore returns an empty store with a window of an hour. The suite only uses
// the present as now, so that a store whose clock is its server's (Redis) is tested alike.
func testReserver(t *testing.T, newStore func(t *testing.T) dedup.Reserver) {
	t.Run("sequences", func(t *testing.T) { testSequences(t, newStore) })
	t.Run("done twice is a no-op", func(t *testing.T) { testDoneTwice(t, newStore(t)) })
	t.Run("concurrent owners", func(t *testing.T) { testConcurrentOwners(t, newStore) })
	t.Run("cancel while waiting", func(t *testing.T) { testCancelWhileWaiting(t, newStore(t)) })
	t.Run("many ids at once", func(t *testing.T) { testManyIDs(t, newStore(t)) })
}

// step reserves (source, id), expects dup, and when it owns the id calls done(accept).
type step struct {
	source, id string
	wantDup    bool
	accept     bool
}

func testSequences(t *testing.T, newStore func(t *testing.T) dedup.Reserver) {
	tests := []struct {
		name  string
		steps []step
	}{
		{"duplicate after accepted", []step{
			{"acme", "e1", false, true},
			{"acme", "e1", true, false},
			{"acme", "e1", true, false},
		}},
		{"release on failure", []step{
			{"acme", "e1", false, false},
			{"acme", "e1", false, false},
			{"acme", "e1", false, true},
			{"acme", "e1", true, false},
		}},
		{"sources are distinct", []step{
			{"acme", "e1", false, true},
			{"codivupload", "e1", false, true},
			{"acme", "e1", true, false},
			{"codivupload", "e1", true, false},
		}},
		{"source and id do not run together", []step{
			{"ab", "c", false, true},
			{"a", "bc", false, true},
			{"a.b", "c", false, true},
		}},
		{"ids are distinct", []step{
			{"acme", "e1", false, true},
			{"acme", "e2", false, true},
			{"acme", "E1", false, true},
			{"acme", "e1:x", false, true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			for i, st := range tt.steps {
				dup, done, err := s.Reserve(context.Background(), st.source, st.id, time.Now())
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

func testDoneTwice(t *testing.T, s dedup.Reserver) {
	ctx := context.Background()
	_, done1, _ := s.Reserve(ctx, "acme", "e1", time.Now())
	done1(false)
	dup, done2, err := s.Reserve(ctx, "acme", "e1", time.Now())
	if dup || err != nil {
		t.Fatalf("released id: dup=%v err=%v", dup, err)
	}
	done1(true) // must neither mark e1 seen nor end the second reservation
	waitCtx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, _, err := s.Reserve(waitCtx, "acme", "e1", time.Now()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Reserve while the second owner holds e1: err = %v, want deadline exceeded", err)
	}
	done2(true)
	done2(false)
	dup, _, err = s.Reserve(ctx, "acme", "e1", time.Now())
	if !dup || err != nil {
		t.Fatalf("accepted id after a repeated done(false): dup=%v err=%v", dup, err)
	}
}

// testConcurrentOwners has 20 goroutines reserve one id; each owner fails until the
// acceptAt-th, which accepts. Owners must follow one another, never overlap.
func testConcurrentOwners(t *testing.T, newStore func(t *testing.T) dedup.Reserver) {
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
			owners, dups := reserveConcurrently(t, newStore(t), n, tt.acceptAt)
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

func reserveConcurrently(t *testing.T, s dedup.Reserver, n, acceptAt int) (owners, dups int) {
	t.Helper()
	var started sync.WaitGroup
	var holding, ownerCount, dupCount atomic.Int32
	started.Add(n)
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for range n {
		wg.Go(func() {
			started.Done()
			dup, done, err := s.Reserve(ctx, "acme", "e1", time.Now())
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

func testCancelWhileWaiting(t *testing.T, s dedup.Reserver) {
	_, done, _ := s.Reserve(context.Background(), "acme", "e1", time.Now())
	ctx, cancel := context.WithCancel(context.Background())
	w := watch(ctx)
	errc := make(chan error, 1)
	go func() {
		_, _, err := s.Reserve(w, "acme", "e1", time.Now())
		errc <- err
	}()
	select {
	case <-w.waiting:
	case err := <-errc:
		t.Fatalf("Reserve of an id in flight returned at once: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("Reserve of an id in flight never waited on its context")
	}
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("a waiter whose context was canceled is still waiting a minute later")
	}
	done(true)
	if dup, _, err := s.Reserve(context.Background(), "acme", "e1", time.Now()); !dup || err != nil {
		t.Fatalf("id accepted after a waiter gave up: dup=%v err=%v", dup, err)
	}
}

// testManyIDs accepts ids from several goroutines at once, then finds every one a duplicate.
func testManyIDs(t *testing.T, s dedup.Reserver) {
	const workers, each = 8, 200
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				dup, done, err := s.Reserve(context.Background(), "acme", fmt.Sprintf("m%d-%d", w, i), time.Now())
				if dup || err != nil {
					t.Errorf("new id: dup=%v err=%v", dup, err)
					return
				}
				done(true)
			}
		})
	}
	wg.Wait()
	for w := range workers {
		for i := range each {
			if dup, _, err := reserveEventually(s, fmt.Sprintf("m%d-%d", w, i)); !dup || err != nil {
				t.Fatalf("m%d-%d: dup=%v err=%v", w, i, dup, err)
			}
		}
	}
}

// reserveEventually reserves with a generous deadline: a store may still be marking the id.
func reserveEventually(s dedup.Reserver, id string) (bool, func(bool), error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return s.Reserve(ctx, "acme", id, time.Now())
}

// watched is a context that tells when a Reserve first asks for its Done channel: the memory
// store asks only in the select it waits in (for Open, or for the id's owner), so for it
// waiting is closed as the waiter reaches its wait. (The Redis client asks before each
// command, earlier: for it the signal may come before the first poll.)
type watched struct {
	context.Context
	once    sync.Once
	waiting chan struct{}
}

func watch(ctx context.Context) *watched {
	return &watched{Context: ctx, waiting: make(chan struct{})}
}

func (w *watched) Done() <-chan struct{} {
	w.once.Do(func() { close(w.waiting) })
	return w.Context.Done()
}
