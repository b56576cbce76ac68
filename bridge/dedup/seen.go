package dedup

// The seen set: a map from key to acceptance time, and a FIFO of (key, time) in insertion
// order. Expiry and eviction pop the FIFO's head; an entry whose time no longer matches the
// map was superseded by a later mark of the same id and is skipped. All callers hold s.mu.

// compactAt is the least number of superseded entries worth a pass over the FIFO.
const compactAt = 1024

// markSeen remembers k as accepted at t and reports whether k was new.
func (s *Store) markSeen(k key, t int64) (added bool) {
	prev, ok := s.seen[k]
	if ok && prev >= t {
		return false
	}
	if ok {
		s.stale++
	} else if len(s.seen) >= s.maxIDs {
		s.evictOldest()
	}
	s.seen[k] = t
	s.order.push(stamp{k, t})
	s.compact()
	return !ok
}

// expire drops the ids accepted a window or more before t.
func (s *Store) expire(t int64) {
	for s.order.len() > 0 && t-s.order.front().at >= s.window {
		s.drop(s.order.pop())
	}
}

// evictOldest drops the oldest remembered id to make room for a new one.
func (s *Store) evictOldest() {
	for s.order.len() > 0 {
		if s.drop(s.order.pop()) {
			s.evicted++
			return
		}
	}
}

// drop forgets e's id if e is its current entry, and reports whether it did.
func (s *Store) drop(e stamp) bool {
	if at, ok := s.seen[e.k]; ok && at == e.at {
		delete(s.seen, e.k)
		return true
	}
	s.stale--
	return false
}

// compact removes superseded entries once they outnumber the live ones, so ids marked again
// and again cannot grow the FIFO past twice the set.
func (s *Store) compact() {
	if s.stale < compactAt || s.stale <= len(s.seen) {
		return
	}
	s.order.filter(func(e stamp) bool {
		at, ok := s.seen[e.k]
		return ok && at == e.at
	})
	s.stale = 0
}
