package spool

import (
	"hash/maphash"
	"sync/atomic"
)

// The index is what the spool keeps in memory of its entries not yet drained: per source, a
// queue of items in spool order, and a set of their (source, dedup key). All fields of items
// and queues are guarded by Spool.mu, except queue.n, read without it on the request path.

// state is where an entry stands.
type state uint8

const (
	writing    state = iota // enqueued for the writer, not yet durable
	unverified              // durable; spooled without a dedup reservation: Verify decides
	doubt                   // durable; its first attempt is still with franz-go, whose outcome decides
	recovered               // durable, read back at Open: Reconcile looks for it in Kafka
	ready                   // to be produced
	flight                  // handed to Kafka by the drainer
	done                    // drained: in Kafka, or dropped as a duplicate; or its write failed
)

// item is one entry.
type item struct {
	seq   uint64
	q     *queue
	key   hkey
	at    int64 // the record's timestamp (its delivery's arrival), unix nanoseconds
	seg   *segment
	off   int64 // of its frame in seg
	size  int   // of its frame
	state state
	// after is the state the item takes once durable.
	after state
}

// queue is a source's items in spool order. Items leave from the front once done; one done
// in the middle (acknowledged while an earlier one failed) waits there until it is the front.
type queue struct {
	name  string
	items []*item
	n     atomic.Int64 // items not done: the source is holding while positive
}

// pop drops the done items at the front.
func (q *queue) pop() {
	i := 0
	for i < len(q.items) && q.items[i].state == done {
		q.items[i] = nil
		i++
	}
	if i == 0 {
		return
	}
	q.items = q.items[i:]
	if cap(q.items) > 1024 && len(q.items) < cap(q.items)/4 {
		q.items = append(make([]*item, 0, 2*len(q.items)), q.items...)
	}
}

// hkey stands for one (source, dedup key): 128 bits of two seeded hashes, so that a false
// duplicate is practically impossible. Seeds are per process: the set is rebuilt at Open.
type hkey struct{ a, b uint64 }

type hasher struct{ s1, s2 maphash.Seed }

func newHasher() hasher { return hasher{maphash.MakeSeed(), maphash.MakeSeed()} }

func (h hasher) key(source, key string) hkey {
	var m maphash.Hash
	m.SetSeed(h.s1)
	m.WriteString(source)
	m.WriteByte(0)
	m.WriteString(key)
	a := m.Sum64()
	m.SetSeed(h.s2)
	m.WriteString(source)
	m.WriteByte(0)
	m.WriteString(key)
	return hkey{a, m.Sum64()}
}

// finish marks it done and takes it out of the index; the caller holds Spool.mu. It reports
// whether it was not done already.
func (s *Spool) finish(it *item) bool {
	if it.state == done {
		return false
	}
	it.state = done
	if it.seg != nil {
		it.seg.live--
	}
	if s.keys[it.key] == it {
		delete(s.keys, it.key)
	}
	s.count--
	it.q.n.Add(-1)
	it.q.pop()
	return true
}
