package dedup

import (
	"testing"
	"time"
)

func TestFIFOStaysBounded(t *testing.T) {
	s := New(time.Hour, 10)
	for i := range 100_000 {
		s.markSeen(s.key("acme", string(rune('a'+i%10))), int64(i))
	}
	if got := s.order.len(); got > 2*compactAt {
		t.Fatalf("FIFO holds %d entries for %d ids", got, len(s.seen))
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
