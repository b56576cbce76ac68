package dedup

import (
	"cmp"
	"slices"
)

// mark is an id to remember in s.groups[g], as read back from Kafka. It holds no pointer,
// so that the garbage collector need not scan millions of them.
type mark struct {
	st stamp
	g  uint32
}

// newest keeps the limit newest marks it is given, in a min-heap by time, so that reading a
// window holding more records than the Store may keep costs no more than the Store.
type newest struct {
	limit int
	h     []mark
}

func (q *newest) add(m mark) {
	if len(q.h) < q.limit {
		q.h = append(q.h, m)
		q.up(len(q.h) - 1)
		return
	}
	if m.st.at <= q.h[0].st.at {
		return
	}
	q.h[0] = m
	q.down(0)
}

// sorted returns the marks oldest first; q is spent.
func (q *newest) sorted() []mark {
	slices.SortFunc(q.h, func(a, b mark) int { return cmp.Compare(a.st.at, b.st.at) })
	return q.h
}

func (q *newest) up(i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if q.h[parent].st.at <= q.h[i].st.at {
			return
		}
		q.h[parent], q.h[i] = q.h[i], q.h[parent]
		i = parent
	}
}

func (q *newest) down(i int) {
	for {
		least, l, r := i, 2*i+1, 2*i+2
		if l < len(q.h) && q.h[l].st.at < q.h[least].st.at {
			least = l
		}
		if r < len(q.h) && q.h[r].st.at < q.h[least].st.at {
			least = r
		}
		if least == i {
			return
		}
		q.h[least], q.h[i] = q.h[i], q.h[least]
		i = least
	}
}
