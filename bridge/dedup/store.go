// Package dedup remembers which (source, event id) pairs the ingress has accepted within a
// window, so that a provider's redelivery is answered "duplicate" instead of producing the
// event twice, and an id still being produced makes its redeliveries wait for the outcome.
// Reserver is that protocol; Store keeps it in the memory of one process, Redis shares it
// between replicas.
//
// Store does not keep ids: a pair is keyed by the first 128 bits of SHA-256 of (source, 0x00,
// id), so a false duplicate is practically impossible, even for a sender who chooses its ids,
// and the keys are the same in every process: a snapshot written by one is read by the next
// (see snapshot.go). The set is bounded by maxIDs (the oldest is evicted) and expires lazily,
// with no goroutine.
// Measured cost (TestMemoryPerID, linux/amd64, Go 1.26): 81 bytes per remembered id at
// 1,000,000 ids, of which 25 are the expiry queue and the rest the hash map; it swings
// between about 66 and 97 with the count, as the map and the queue grow in steps.
package dedup

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/socialbridge/bridge/bridge/failure"
)

// Store is the set of accepted ids plus the ids in flight, in memory. It is safe for
// concurrent use.
type Store struct {
	maxIDs  int
	def     *group            // the sources without a window of their own
	sources map[string]*group // the sources with one
	groups  []*group          // def and every group of sources

	mu      sync.Mutex
	n       int // ids remembered over all groups
	flights map[key]flight
	gen     uint64
	evicted uint64

	open chan struct{} // closed once Reserve may answer; see Options.Rebuilding
}

// group is the seen set of the sources that share one window: a map from key to acceptance
// time and a FIFO of (key, time) in time order (see seen.go).
type group struct {
	index  uint32 // in Store.groups
	source string // "" for the default group
	window int64  // nanoseconds
	seen   map[key]int64
	order  fifo
	stale  int // entries of order superseded by a later mark of the same id
}

// key is the 128-bit hash standing for one (source, id).
type key struct{ a, b uint64 }

// flight is an id reserved by a request that has not finished producing it.
type flight struct {
	at   int64         // when its delivery was received, unix nanoseconds
	gen  uint64        // tells this reservation's done from a later one's
	wake chan struct{} // made by the first waiter, closed when the owner finishes
}

// Options are what a caller may set of New beside the window and the bound; the zero
// value is a Store that answers at once, with one window for every source.
type Options struct {
	// Windows are the sources whose ids are remembered for a window of their own instead of
	// the Store's, by source name. Each must be positive: config validation refuses the rest.
	Windows map[string]time.Duration
	// Rebuilding builds a Store that is being filled (by Rebuild or Load) before it may
	// answer: Reserve waits until Open is called, at most until its context ends, and then
	// fails with a failure.Unavailable error. Accepting a delivery before the store knows the
	// window's ids could produce one of them twice.
	Rebuilding bool
}

// New returns a Store that remembers accepted ids for window (or a source's own, in
// o.Windows), at most maxIDs of them over all sources. It panics if a window or maxIDs is
// not positive: config validation refuses those before.
func New(window time.Duration, maxIDs int, o Options) *Store {
	if window <= 0 || maxIDs <= 0 {
		panic("dedup: New needs a positive window and maxIDs")
	}
	def := newGroup("", window)
	s := &Store{
		maxIDs:  maxIDs,
		def:     def,
		sources: make(map[string]*group),
		groups:  []*group{def},
		flights: make(map[key]flight),
	}
	for _, source := range slices.Sorted(maps.Keys(o.Windows)) {
		s.addGroup(source, o.Windows[source])
	}
	if o.Rebuilding {
		s.open = make(chan struct{})
	}
	return s
}

// addGroup gives source a window of its own.
func (s *Store) addGroup(source string, window time.Duration) {
	if window <= 0 {
		panic("dedup: New needs a positive window for source " + source)
	}
	g := newGroup(source, window)
	g.index = uint32(len(s.groups))
	s.sources[source] = g
	s.groups = append(s.groups, g)
}

func newGroup(source string, window time.Duration) *group {
	return &group{source: source, window: int64(window), seen: make(map[key]int64)}
}

// Open lets Reserve answer, once a Store built with Options.Rebuilding has been filled.
// Calling it again, or on a Store built without it, does nothing.
func (s *Store) Open() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open != nil {
		select {
		case <-s.open:
		default:
			close(s.open)
		}
	}
}

// Reserve implements Reserver. If the id is in flight, Reserve waits for that attempt:
// accepted means dup, failed means Reserve tries again, so exactly one waiter becomes the next
// owner; if ctx ends first it returns ctx's error.
func (s *Store) Reserve(ctx context.Context, source, id string, now time.Time) (dup bool, done func(accepted bool), err error) {
	if err := s.waitOpen(ctx); err != nil {
		return false, nil, err
	}
	g, k, t := s.groupOf(source), s.key(source, id), now.UnixNano()
	for {
		dup, done, wait := s.try(g, k, t)
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

// TryReserve is Reserve for a caller that would rather not wait: when the store is open
// and the id is not in flight it answers as Reserve would, with ok true; otherwise it
// reserves nothing and reports ok false, and the caller calls Reserve, with a context that
// bounds the wait. The ingress uses it to skip arming a timeout for the common case, which
// never waits.
func (s *Store) TryReserve(source, id string, now time.Time) (dup bool, done func(accepted bool), ok bool) {
	if s.open != nil {
		select {
		case <-s.open:
		default:
			return false, nil, false
		}
	}
	dup, done, wait := s.try(s.groupOf(source), s.key(source, id), now.UnixNano())
	return dup, done, wait == nil
}

func (s *Store) waitOpen(ctx context.Context) error {
	if s.open == nil {
		return nil
	}
	select {
	case <-s.open:
		return nil
	case <-ctx.Done():
		return failure.Wrap(failure.Unavailable, "dedup is still being rebuilt from kafka", ctx.Err())
	}
}

func (s *Store) groupOf(source string) *group {
	if g, ok := s.sources[source]; ok {
		return g
	}
	return s.def
}

// try answers at once, or returns the channel to wait on when the id is in flight.
func (s *Store) try(g *group, k key, t int64) (dup bool, done func(bool), wait <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire(t)
	if at, ok := g.seen[k]; ok && t-at < g.window {
		return true, nil, nil
	}
	f, busy := s.flights[k]
	if !busy {
		return false, s.reserve(g, k, t), nil
	}
	if f.wake == nil {
		f.wake = make(chan struct{})
		s.flights[k] = f
	}
	return false, nil, f.wake
}

// reserve records k in flight; the closure is the reservation's only allocation.
func (s *Store) reserve(g *group, k key, t int64) func(bool) {
	s.gen++
	gen := s.gen
	s.flights[k] = flight{at: t, gen: gen}
	return func(accepted bool) { s.finish(g, k, gen, t, accepted) }
}

func (s *Store) finish(g *group, k key, gen uint64, t int64, accepted bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.flights[k]
	if !ok || f.gen != gen {
		return // done was already called; the id may be someone else's now
	}
	delete(s.flights, k)
	if accepted {
		s.markSeen(g, k, t)
	}
	if f.wake != nil {
		close(f.wake)
	}
}

// MarkSeen remembers (source, id) as accepted at at, as Rebuild does for records found in
// Kafka. An earlier at than the one already remembered changes nothing.
func (s *Store) MarkSeen(source, id string, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.markSeen(s.groupOf(source), s.key(source, id), at.UnixNano())
}

// Len returns how many ids are remembered, counting expired ones not yet dropped.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
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
	var buf [128]byte // enough for most pairs without an allocation
	sum := sha256.Sum256(append(append(append(buf[:0], source...), 0), id...))
	return key{binary.LittleEndian.Uint64(sum[:8]), binary.LittleEndian.Uint64(sum[8:16])}
}

// BytesPerID is the measured memory cost of one remembered id in a Store (see the package
// documentation), for sizing dedup.max_ids.
const BytesPerID = 81
