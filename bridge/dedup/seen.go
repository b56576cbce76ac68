package dedup

// The seen sets: each group maps key to acceptance time and keeps a FIFO of (key, time) in
// insertion order. Expiry and eviction pop a FIFO's head; an entry whose time no longer
// matches the map was superseded by a later mark of the same id and is skipped. All callers
// hold s.mu.

// compactAt is the least number of superseded entries worth a pass over a FIFO.
const compactAt = 1024

// markSeen remembers k in g as accepted at t and reports whether k was new.
func (s *Store) markSeen(g *group, k key, t int64) (added bool) {
	prev, ok := g.seen[k]
	if ok && prev >= t {
		return false
	}
	if ok {
		g.stale++
	} else {
		if s.n >= s.maxIDs {
			s.evictOldest()
		}
		s.n++
	}
	g.seen[k] = t
	g.order.push(stamp{k, t})
	g.compact()
	return !ok
}

// expire drops, in every group, the ids accepted a window or more before t.
func (s *Store) expire(t int64) {
	for _, g := range s.groups {
		for g.order.len() > 0 && t-g.order.front().at >= g.window {
			if g.drop(g.order.pop()) {
				s.n--
			}
		}
	}
}

// evictOldest drops the oldest remembered id of all groups to make room for a new one.
func (s *Store) evictOldest() {
	for {
		var oldest *group
		for _, g := range s.groups {
			if g.order.len() > 0 && (oldest == nil || g.order.front().at < oldest.order.front().at) {
				oldest = g
			}
		}
		if oldest == nil {
			return
		}
		if oldest.drop(oldest.order.pop()) {
			s.n--
			s.evicted++
			return
		}
	}
}

// drop forgets e's id if e is its current entry, and reports whether it did.
func (g *group) drop(e stamp) bool {
	if at, ok := g.seen[e.k]; ok && at == e.at {
		delete(g.seen, e.k)
		return true
	}
	g.stale--
	return false
}

// compact removes superseded entries once they outnumber the live ones, so ids marked again
// and again cannot grow the FIFO past twice the set.
func (g *group) compact() {
	if g.stale < compactAt || g.stale <= len(g.seen) {
		return
	}
	g.order.filter(func(e stamp) bool {
		at, ok := g.seen[e.k]
		return ok && at == e.at
	})
	g.stale = 0
}

// reserve makes room for n more ids in an empty group at once, instead of growing the map and
// the FIFO step by step while a snapshot is read.
func (g *group) reserve(n int) {
	if len(g.seen) > 0 || n <= 0 {
		return
	}
	g.seen = make(map[key]int64, n)
	size := 64
	for size < n {
		size *= 2
	}
	g.order.resize(max(size, len(g.order.buf)))
}
