package dedup

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
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

// TestMarkedAgainAtTheSameTime: an id marked again at the time it holds (a record read back
// twice with one timestamp) adds no entry, so that no number of such marks grows the FIFO.
func TestMarkedAgainAtTheSameTime(t *testing.T) {
	s := New(time.Hour, 10, Options{})
	k := s.key("acme", "e1")
	for range 10_000 {
		s.markSeen(s.def, k, 42)
	}
	if got := s.def.order.len(); got != 1 {
		t.Fatalf("FIFO holds %d entries for one id marked at one time", got)
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
	var even []int64
	for at := want; at < next; at++ {
		if at%2 == 0 {
			even = append(even, at)
		}
	}
	q.filter(func(e stamp) bool { return e.at%2 == 0 })
	if q.len() != len(even) {
		t.Fatalf("after filter len = %d, want %d", q.len(), len(even))
	}
	for _, at := range even {
		if got := q.pop().at; got != at {
			t.Fatalf("after filter pop = %d, want %d", got, at)
		}
	}
}

// TestFIFOCopyOut copies rings whose entries wrap past the buffer's end, from a few to all
// but one, and one that does not wrap: the copy holds every entry, oldest first.
func TestFIFOCopyOut(t *testing.T) {
	for _, n := range []int{1, 5, 40, 63, 64} {
		for _, head := range []int{0, 1, 24, 63} {
			var q fifo
			for i := range head {
				q.push(stamp{at: int64(-1 - i)})
			}
			for range head {
				q.pop()
			}
			for i := range n {
				q.push(stamp{at: int64(i)})
			}
			if len(q.buf) != 64 {
				t.Fatalf("buffer of %d, want 64", len(q.buf))
			}
			out := q.copyOut()
			if len(out) != n {
				t.Fatalf("n=%d head=%d: copied %d", n, head, len(out))
			}
			for i, e := range out {
				if e.at != int64(i) {
					t.Fatalf("n=%d head=%d: entry %d is %d", n, head, i, e.at)
				}
			}
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

// TestNewestAgainstASort gives the heap marks in random orders, with repeated times, and
// compares what it keeps with the newest of a sorted copy: the same times, oldest first.
func TestNewestAgainstASort(t *testing.T) {
	rng := rand.New(rand.NewPCG(16, 19))
	for run := range 300 {
		n, limit := 1+rng.IntN(200), 1+rng.IntN(64)
		q := newest{limit: limit}
		all := make([]int64, n)
		for i := range all {
			all[i] = rng.Int64N(int64(n))
			q.add(mark{st: stamp{at: all[i]}})
		}
		slices.Sort(all)
		want := all[max(0, n-limit):]
		got := q.sorted()
		if len(got) != len(want) {
			t.Fatalf("run %d (n %d, limit %d): kept %d, want %d", run, n, limit, len(got), len(want))
		}
		for i := range got {
			if got[i].st.at != want[i] {
				t.Fatalf("run %d (n %d, limit %d): mark %d is %d, want %d", run, n, limit, i, got[i].st.at, want[i])
			}
		}
	}
}

// TestEvictionPassesOverAnEmptyGroup: with max_ids reached in one source's window while
// another window holds nothing, the oldest of the group that has ids is evicted.
func TestEvictionPassesOverAnEmptyGroup(t *testing.T) {
	for name, windows := range map[string]map[string]time.Duration{
		"the default window full": {"other": 2 * time.Hour},
		"a source's window full":  {"acme": 2 * time.Hour},
	} {
		s := New(time.Hour, 3, Options{Windows: windows})
		g := s.groupOf("acme")
		for i := range 5 {
			s.markSeen(g, s.key("acme", string(rune('a'+i))), int64(i))
		}
		if s.n != 3 || s.evicted != 2 {
			t.Fatalf("%s: %d ids, %d evicted; want 3 and 2", name, s.n, s.evicted)
		}
		for i := range 5 {
			if _, kept := g.seen[s.key("acme", string(rune('a'+i)))]; kept != (i >= 2) {
				t.Errorf("%s: id %d kept=%v; only the two oldest are evicted", name, i, kept)
			}
		}
	}
}

// TestReserveKeepsAGroupsIDs: making room in a group that already holds ids (it is meant
// for an empty one, as a snapshot is read) forgets none of them.
func TestReserveKeepsAGroupsIDs(t *testing.T) {
	s := New(time.Hour, 10, Options{})
	k := s.key("acme", "e1")
	s.markSeen(s.def, k, 1)
	s.def.reserve(1000)
	if s.markSeen(s.def, k, 1) {
		t.Fatal("reserve forgot the group's ids")
	}
}

// TestExpiryOfASupersededEntry: an id marked at 1 and again at 2 leaves a superseded entry;
// expiring it forgets nothing and counts it no longer stale.
func TestExpiryOfASupersededEntry(t *testing.T) {
	s := New(10, 10, Options{})
	k := s.key("acme", "e1")
	s.markSeen(s.def, k, 1)
	s.markSeen(s.def, k, 2)
	if s.def.stale != 1 {
		t.Fatalf("stale = %d after a mark again, want 1", s.def.stale)
	}
	s.expire(11) // the entry of 1 is a window old
	if s.def.stale != 0 || s.n != 1 || s.def.order.len() != 1 {
		t.Fatalf("after expiring the superseded entry: stale %d, %d ids, FIFO %d; want 0, 1, 1", s.def.stale, s.n, s.def.order.len())
	}
	if s.markSeen(s.def, k, 2) {
		t.Fatal("the id was forgotten with its superseded entry")
	}
}

// TestNewRefusesANonPositiveWindow: a source's window of zero, or a default window or max_ids
// of zero, is a programming error (config refuses them), refused at once and by name.
func TestNewRefusesANonPositiveWindow(t *testing.T) {
	for name, build := range map[string]func(){
		"source window": func() { New(time.Hour, 10, Options{Windows: map[string]time.Duration{"acme": 0}}) },
		"window":        func() { New(0, 10, Options{}) },
		"max_ids":       func() { New(time.Hour, 0, Options{}) },
	} {
		func() {
			defer func() {
				msg, _ := recover().(string)
				if msg == "" || name == "source window" && !strings.Contains(msg, "acme") {
					t.Errorf("%s of zero: panic %q, want one naming what is wrong", name, msg)
				}
			}()
			build()
		}()
	}
}

// TestCompactionThreshold: superseded entries are compacted away once they are at least
// compactAt and outnumber the live ids, not before.
func TestCompactionThreshold(t *testing.T) {
	s := New(time.Hour, 10*compactAt, Options{})
	keys := make([]key, compactAt)
	for i := range keys {
		keys[i] = s.key("acme", strconv.Itoa(i))
		s.markSeen(s.def, keys[i], 1)
	}
	for _, k := range keys { // compactAt superseded entries, as many as live ids: kept
		s.markSeen(s.def, k, 2)
	}
	if got := s.def.order.len(); got != 2*compactAt {
		t.Fatalf("FIFO of %d with %d stale entries for as many ids, want %d: compacted too soon", got, s.def.stale, 2*compactAt)
	}
	s.markSeen(s.def, keys[0], 3) // one more than the live ids: compacted
	if got := s.def.order.len(); got != compactAt || s.def.stale != 0 {
		t.Fatalf("FIFO of %d, %d stale, once the stale outnumber the live; want %d and 0", got, s.def.stale, compactAt)
	}

	one := New(time.Hour, 10, Options{})
	k := one.key("acme", "e1")
	for at := range int64(compactAt) { // compactAt-1 superseded entries for one id: kept
		one.markSeen(one.def, k, at+1)
	}
	if got := one.def.order.len(); got != compactAt {
		t.Fatalf("FIFO of %d with %d stale entries, want %d: compacted below compactAt", got, one.def.stale, compactAt)
	}
	one.markSeen(one.def, k, compactAt+1)
	if got := one.def.order.len(); got != 1 {
		t.Fatalf("FIFO of %d once compactAt entries are stale, want 1", got)
	}
}

// TestReserveMakesRoom: reserve(n) on an empty group sizes its FIFO to the least power of two
// that holds n (64 at least) at once; n of 0 or less reserves nothing.
func TestReserveMakesRoom(t *testing.T) {
	for n, want := range map[int]int{-1: 0, 0: 0, 1: 64, 64: 64, 65: 128, 100: 128, 1000: 1024} {
		s := New(time.Hour, 10, Options{})
		s.def.reserve(n)
		if got := len(s.def.order.buf); got != want {
			t.Errorf("reserve(%d): FIFO of %d, want %d", n, got, want)
		}
	}
}
