package dedup

import (
	"testing"
	"time"
)

func TestFIFOStaysBounded(t *testing.T) {
	s := New(time.Hour, 10, Options{})
	for i := range 100_000 {
		s.markSeen(s.def, s.key("acme", string(rune('a'+i%10))), int64(i))
	}
	if got := s.def.order.len(); got > 2*compactAt {
		t.Fatalf("FIFO holds %d entries for %d ids", got, len(s.def.seen))
	}
}

func TestFIFOWrapsInOrder(t *testing.T) {
	var q fifo
	next, want := int64(0), int64(0)
	for range 1000 {
		for range 3 {
			q.push(stamp{at: next})
			next++
		}
		for range 2 {
			if got := q.pop().at; got != want {
				t.Fatalf("pop = %d, want %d", got, want)
			}
			want++
		}
	}
	q.filter(func(e stamp) bool { return e.at%2 == 0 })
	for q.len() > 0 {
		if got := q.pop().at; got%2 != 0 || got < want {
			t.Fatalf("after filter pop = %d", got)
		}
	}
}

// TestNewestKeepsTheNewest gives the bounded heap of a rebuild marks in a scrambled order:
// it must keep exactly the newest limit of them, and hand them back oldest first.
func TestNewestKeepsTheNewest(t *testing.T) {
	for _, limit := range []int{1, 7, 100, 1000} {
		q := newest{limit: limit}
		const n = 1000
		for i := range n {
			q.add(mark{st: stamp{at: int64((i * 7919) % n)}}) // 7919 is prime: a permutation
		}
		got := q.sorted()
		if len(got) != limit {
			t.Fatalf("limit %d: kept %d", limit, len(got))
		}
		for i, m := range got {
			if want := int64(n - limit + i); m.st.at != want {
				t.Fatalf("limit %d: mark %d is %d, want %d", limit, i, m.st.at, want)
			}
		}
	}
}
