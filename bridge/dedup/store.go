// Package dedup remembers which (source, event id) pairs the ingress has accepted within a
// window, so that a provider's redelivery is answered "duplicate" instead of producing the
// event twice, and an id still being produced makes its redeliveries wait for the outcome.
//
// Ids are not stored: a pair is keyed by a 128-bit hash of (source, 0x00, id), two maphash
// sums with independent random seeds, so a false duplicate is practically impossible. The set
// is bounded by maxIDs (the oldest is evicted) and expires lazily, with no goroutine. Measured
// cost (TestMemoryPerID, linux/amd64, Go 1.26): 81 bytes per remembered id at 1,000,000 ids,
// of which 25 are the expiry queue and the rest the hash map; it swings between about 66 and
// 97 with the count, as the map and the queue grow in steps.
package dedup

import (
	"context"
	"hash/maphash"
	"sync"
	"time"
)

// Store is the set of accepted ids plus the ids in flight. It is safe for concurrent use.
type Store struct {
	window int64 // nanoseconds
	maxIDs int
	seeds  [2]maphash.Seed

	mu      sync.Mutex
	seen    map[key]int64 // accepted id → when, unix nanoseconds
	order   fifo          // seen ids in insertion order, for expiry and eviction
	stale   int           // entries of order superseded by a later mark of the same id
	flights map[key]flight
	gen     uint64
	evicted uint64
}

// key is the 128-bit hash standing for one (source, id).
type key struct{ a, b uint64 }

// flight is an id reserved by a request that has not finished producing it.
type flight struct {
	gen  uint64        // tells this reservation's done from a later one's
	wake chan struct{} // made by the first waiter, closed when the owner finishes
}

// New returns a Store that remembers accepted ids for window, at most maxIDs of them.
// It panics if either is not positive: config validation refuses those before.
func New(window time.Duration, maxIDs int) *Store {
	if window <= 0 || maxIDs <= 0 {
		panic("dedup: New needs a positive window and maxIDs")
	}
	return &Store{
		window:  int64(window),
		maxIDs:  maxIDs,
		seeds:   [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()},
		seen:    make(map[key]int64),
		flights: make(map[key]flight),
	}
}

// Reserve claims (source, id) for a request received at now. If the id was accepted within the
// window it returns dup. If another request holds it, Reserve waits for that attempt: accepted
// means dup, failed means Reserve tries again, so exactly one waiter becomes the next owner;
// if ctx ends first it returns ctx's error. Otherwise the caller owns the id and must call
// done once: done(true) remembers it as seen at now, done(false) releases it. Later calls of
// done are no-ops.
func (s *Store) Reserve(ctx context.Context, source, id string, now time.Time) (dup bool, done func(accepted bool), err error) {
	k := s.key(source, id)
	t := now.UnixNano()
	for {
		dup, done, wait := s.try(k, t)
		if wait == nil {
			return dup, done, nil
		}
		select {
		case <-wait:
		case <-ctx.Done():
			return false, nil, ctx.Err()
		}
	}
}

// try answers at once, or returns the channel to wait on when the id is in flight.
func (s *Store) try(k key, t int64) (dup bool, done func(bool), wait <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire(t)
	if at, ok := s.seen[k]; ok && t-at < s.window {
		return true, nil, nil
	}
	f, busy := s.flights[k]
	if !busy {
		return false, s.reserve(k, t), nil
	}
	if f.wake == nil {
		f.wake = make(chan struct{})
		s.flights[k] = f
	}
	return false, nil, f.wake
}

// reserve records k in flight; the closure is the reservation's only allocation.
func (s *Store) reserve(k key, t int64) func(bool) {
	s.gen++
	gen := s.gen
	s.flights[k] = flight{gen: gen}
	return func(accepted bool) { s.finish(k, gen, t, accepted) }
}

func (s *Store) finish(k key, gen uint64, t int64, accepted bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.flights[k]
	if !ok || f.gen != gen {
		return // done was already called; the id may be someone else's now
	}
	delete(s.flights, k)
	if accepted {
		s.markSeen(k, t)
	}
	if f.wake != nil {
		close(f.wake)
	}
}

// MarkSeen remembers (source, id) as accepted at at, as Rebuild does for records found in
// Kafka. An earlier at than the one already remembered changes nothing.
func (s *Store) MarkSeen(source, id string, at time.Time) {
	s.mark(s.key(source, id), at.UnixNano())
}

func (s *Store) mark(k key, t int64) (added bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.markSeen(k, t)
}

// Len returns how many ids are remembered, counting expired ones not yet dropped.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.seen)
}

// Evicted returns how many ids were dropped before their window ended because the Store
// held maxIDs.
func (s *Store) Evicted() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.evicted
}

// key hashes (source, 0x00, id); source names never hold a NUL, so the input is unambiguous.
func (s *Store) key(source, id string) key {
	var h maphash.Hash
	h.SetSeed(s.seeds[0])
	writePair(&h, source, id)
	a := h.Sum64()
	h.SetSeed(s.seeds[1])
	writePair(&h, source, id)
	return key{a, h.Sum64()}
}

func writePair(h *maphash.Hash, source, id string) {
	h.WriteString(source)
	h.WriteByte(0)
	h.WriteString(id)
}
