package ingress

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

// conn records the read deadlines admission sets.
type fakeConn struct {
	mu       sync.Mutex
	deadline time.Time
}

func (c *fakeConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deadline = t
	return nil
}

// reserveShedding starts reserving n bytes for u, a reservation that must shed the upload
// on victim first, and returns once it has: the reservation's result comes on the channel.
func reserveShedding(t *testing.T, a *admission, u *upload, n int64, victim *fakeConn) chan error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- a.reserve(u, n) }()
	for !victim.shed() {
		select {
		case err := <-done:
			t.Fatalf("reserve returned %v before shedding", err)
		case <-time.After(time.Millisecond): // poll the victim's deadline
		}
	}
	return done
}

func (c *fakeConn) shed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.deadline.IsZero()
}

// TestAdmissionBudget: reservations past the budget with nothing to shed fail at once, and
// what an upload held is free again once it ends.
func TestAdmissionBudget(t *testing.T) {
	a := newAdmission(100, 1)
	u := a.begin(&fakeConn{})
	if err := a.reserve(u, 80); err != nil {
		t.Fatal(err)
	}
	v := a.begin(&fakeConn{})
	u.filling(time.Now()) // it has waited on its chunk for less than shedAfter
	if err := a.reserve(v, 30); !errors.Is(err, errBodyBytes) {
		t.Fatalf("past the budget, beside an upload not yet sheddable: %v, want %v", err, errBodyBytes)
	}
	a.end(u)
	if err := a.reserve(v, 30); err != nil {
		t.Fatalf("after the first upload ended: %v", err)
	}
	a.end(v)
	if a.bytes != 0 {
		t.Fatalf("%d bytes still reserved after every upload ended", a.bytes)
	}
}

// TestAdmissionShedsTheSlowest: a reservation that does not fit sheds the upload that has
// waited longest per byte on its chunk (its read deadline moved to now), and gets its bytes
// when it ends.
func TestAdmissionShedsTheSlowest(t *testing.T) {
	a := newAdmission(110, 1)
	slow, slower := &fakeConn{}, &fakeConn{}
	s1, s2 := a.begin(slow), a.begin(slower)
	for _, u := range []*upload{s1, s2} {
		if err := a.reserve(u, 50); err != nil {
			t.Fatal(err)
		}
		u.filling(time.Now().Add(-2 * shedAfter))
	}
	s1.received(40)
	s2.received(10)
	fresh := a.begin(&fakeConn{})                // no chunk read yet: counts as fast
	if err := a.reserve(fresh, 10); err != nil { // the last 10 bytes of the budget
		t.Fatal(err)
	}
	done := reserveShedding(t, a, fresh, 30, slower)
	if slow.shed() {
		t.Fatal("the faster of the two uploads was shed")
	}
	if !a.wasShed(s2) {
		t.Fatal("the slowest upload does not know it was shed")
	}
	a.end(s2) // its handler saw the failed read and answered
	if err := <-done; err != nil {
		t.Fatalf("reserve after the shed upload ended: %v", err)
	}
	// Of the shed upload's 50 bytes, the 30 still wanted went to fresh, the rest back.
	if bytes, _, shed := a.usage(); bytes != 50+40 || fresh.held != 40 || shed != 1 {
		t.Fatalf("after the handover: %d bytes reserved, fresh holds %d, %d shed; want 90, 40, 1", bytes, fresh.held, shed)
	}
	if err := a.reserve(s2, 1); !errors.Is(err, errShed) {
		t.Fatalf("a shed upload reserving again: %v, want %v", err, errShed)
	}
	a.end(s1)
	a.end(fresh)
	if a.bytes != 0 {
		t.Fatalf("%d bytes still reserved after every upload ended", a.bytes)
	}
}

// TestHeirRefusedAtOnceOnceItsShedUploadsEnded: an upload that had another shed for it, and
// got that upload's bytes, is later refused at once when it wants more than the budget has
// and nothing is left to shed: it does not wait for shed uploads that have all ended.
func TestHeirRefusedAtOnceOnceItsShedUploadsEnded(t *testing.T) {
	a := newAdmission(100, 1)
	victim := &fakeConn{}
	slow := a.begin(victim)
	if err := a.reserve(slow, 60); err != nil {
		t.Fatal(err)
	}
	slow.filling(time.Now().Add(-2 * shedAfter)) // waiting on its chunk, nothing read: sheddable
	heir := a.begin(&fakeConn{})
	if err := a.reserve(heir, 40); err != nil {
		t.Fatal(err)
	}
	done := reserveShedding(t, a, heir, 30, victim)
	a.end(slow)
	if err := <-done; err != nil {
		t.Fatalf("reserve once the shed upload ended: %v", err)
	}
	other := a.begin(&fakeConn{})
	if err := a.reserve(other, 30); err != nil { // the budget is full again
		t.Fatal(err)
	}
	other.filling(time.Now()) // not sheddable
	go func() { done <- a.reserve(heir, 10) }()
	for {
		select {
		case err := <-done:
			if !errors.Is(err, errBodyBytes) {
				t.Fatalf("past the budget with nothing to shed: %v, want %v", err, errBodyBytes)
			}
			a.end(other)
			a.end(heir)
			if bytes, _, _ := a.usage(); bytes != 0 {
				t.Fatalf("%d bytes still reserved after every upload ended", bytes)
			}
			return
		case <-time.After(time.Millisecond):
		}
		a.mu.Lock()
		waiting := a.waiting
		a.mu.Unlock()
		if waiting > 0 {
			t.Fatal("the reservation waits for shed uploads, though the one shed for it has ended")
		}
	}
}

// TestShedBytesOnceTheHeirIsServed: when the reservation a shed upload was shed for is met
// by other bytes first, the shed upload's bytes go back to the budget when it ends, and
// what its heir holds stays its own.
func TestShedBytesOnceTheHeirIsServed(t *testing.T) {
	a := newAdmission(110, 1)
	other, victim := a.begin(&fakeConn{}), &fakeConn{}
	shed := a.begin(victim)
	for _, u := range []*upload{other, shed} {
		if err := a.reserve(u, 50); err != nil {
			t.Fatal(err)
		}
	}
	shed.filling(time.Now().Add(-2 * shedAfter)) // waiting on its chunk, nothing read: the slowest
	heir := a.begin(&fakeConn{})
	if err := a.reserve(heir, 10); err != nil {
		t.Fatal(err)
	}
	done := reserveShedding(t, a, heir, 30, victim)
	a.end(other) // frees 50 bytes before the shed upload ends: heir takes 30 from the budget
	if err := <-done; err != nil {
		t.Fatalf("reserve once bytes were freed: %v", err)
	}
	a.end(shed)
	if bytes, _, _ := a.usage(); bytes != 40 || heir.held != 40 {
		t.Fatalf("after the shed upload ended: %d bytes reserved, the heir holds %d; want 40, 40", bytes, heir.held)
	}
	a.end(heir)
	if bytes, _, _ := a.usage(); bytes != 0 {
		t.Fatalf("%d bytes still reserved after every upload ended", bytes)
	}
}

// TestShedOnlySlowerUploads: an upload is shed only once it has waited shedAfter on its
// chunk, and only for one whose last chunk was faster than what it has read of its own
// (bytes of the chunk per second waited, not counting what the body held before); the
// slowest goes first. On a clock the test sets.
func TestShedOnlySlowerUploads(t *testing.T) {
	a := newAdmission(100, 1)
	now := time.Now()
	waiting := func(before, got int, d time.Duration) (*upload, *fakeConn) {
		c := &fakeConn{}
		u := a.begin(c)
		u.received(before)
		u.filling(now.Add(-d))
		u.received(got)
		return u, c
	}
	read := func(n int, d time.Duration) *upload { // an upload whose last chunk was n bytes in d
		u := a.begin(&fakeConn{})
		u.filling(now.Add(-d))
		u.filled(now, n)
		return u
	}
	_, fast := waiting(500, 1000, 500*time.Millisecond)       // 2,000 B/s
	_, slow := waiting(10_000_000, 100, 500*time.Millisecond) // 200 B/s
	_, young := waiting(0, 0, shedAfter/2)                    // 0 B/s, but not waited long enough
	_, slowest := waiting(0, 10, shedAfter)                   // 100 B/s, just old enough
	shed := func(u *upload) { a.mu.Lock(); a.shedSlowest(u, now); a.mu.Unlock() }
	check := func(step string, want ...*fakeConn) {
		t.Helper()
		for _, c := range []*fakeConn{fast, slow, young, slowest} {
			if c.shed() != slices.Contains(want, c) {
				t.Fatalf("%s: fast %v, slow %v, young %v, slowest %v shed; want %d of them", step, fast.shed(), slow.shed(), young.shed(), slowest.shed(), len(want))
			}
		}
	}
	shed(read(1000, 100*time.Millisecond)) // 10,000 B/s
	check("for a fast upload", slowest)
	shed(read(1000, 100*time.Millisecond))
	check("for another", slowest, slow)
	shed(read(1000, 500*time.Millisecond)) // 2,000 B/s: fast is no slower
	check("for one as fast as the fastest", slowest, slow)
	if _, _, n := a.usage(); n != 2 {
		t.Fatalf("%d uploads counted shed, want 2", n)
	}
}

// TestAdmissionRequests: past max_requests_in_flight, enter fails until one leaves.
func TestAdmissionRequests(t *testing.T) {
	a := newAdmission(100, 2)
	for range 2 {
		if err := a.enter(); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.enter(); !errors.Is(err, errRequests) {
		t.Fatalf("past the cap: %v, want %v", err, errRequests)
	}
	a.leave()
	if err := a.enter(); err != nil {
		t.Fatalf("after one left: %v", err)
	}
}

// TestAdmissionWarnsSparingly: refusals past the caps are counted, and a warning is due at
// most every warnEvery, with the count since the last one.
func TestAdmissionWarnsSparingly(t *testing.T) {
	a := newAdmission(100, 1)
	start := time.Now()
	if n := a.refused(start); n != 1 {
		t.Fatalf("the first refusal: warning with %d, want 1", n)
	}
	for i := range 5 {
		if n := a.refused(start.Add(time.Duration(i) * time.Second)); n != 0 {
			t.Fatalf("refusal %d within warnEvery: warning with %d", i, n)
		}
	}
	if n := a.refused(start.Add(warnEvery)); n != 6 {
		t.Fatalf("after warnEvery: warning with %d, want the 6 since the last", n)
	}
}
