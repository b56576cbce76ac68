package ingress

import (
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/socialbridge/bridge/bridge/failure"
)

// admission bounds what webhook requests hold at once, before any of them is verified: the
// bytes of their bodies, reserved as they arrive and released with the answer
// (http.max_body_bytes_in_flight), and the requests being handled past their body
// (http.max_requests_in_flight). Past either, a request is answered 503 with Retry-After.
//
// Slow uploads would otherwise keep the byte budget from deliveries that arrive whole: a
// reservation that does not fit sheds the slowest upload, by moving its read deadline to
// now, and waits, at most shedWait, for its bytes, which the shed upload hands to it when it
// ends. Speed is measured on the chunk being read (bytes per second since it began): only an
// upload that has waited on its chunk for shedAfter may be shed, and only for one that read
// its last chunk faster (a body's first chunk counts as fast). A delivery sent at once (a
// provider's) reads its chunks in microseconds; an upload trickled to hold memory waits on
// each.
type admission struct {
	maxBytes    int64
	maxRequests int64

	mu       sync.Mutex
	bytes    int64
	requests int64
	uploads  map[*upload]struct{} // bodies being received
	freed    chan struct{}        // closed, and replaced, when bytes are released to waiters
	waiting  int                  // reservations waiting on freed
	shed     uint64               // uploads shed so far

	refusals atomic.Int64 // answered 503 past a cap since the last warning
	warned   atomic.Int64 // when that warning was, unix nanoseconds
}

// warnEvery spaces the warnings about refusals past the caps: unauthenticated senders cause
// them at will, and a line each would flood the log.
const warnEvery = time.Minute

// Shedding's bounds: how long an upload waits on its chunk before it may be shed, and how
// long a reservation waits for a shed upload's bytes.
const (
	shedAfter = 100 * time.Millisecond
	shedWait  = 5 * time.Second
)

// deadliner is the part of a connection shedding needs.
type deadliner interface{ SetReadDeadline(time.Time) error }

// upload is one request's body, from its first byte read to its answer.
type upload struct {
	conn deadliner
	// The chunk being read: when it began (unix nanoseconds, 0 between chunks) and what the
	// body held then; got is what it holds now.
	fillStart, fillBase, got atomic.Int64
	lastRate                 float64 // of the last chunk read, bytes per second; its goroutine's own
	// Under admission.mu:
	held     int64   // bytes reserved
	want     int64   // what held must reach for the reservation waiting, if any
	shed     bool    // shed for heir
	heir     *upload // who gets held when this one ends
	awaiting int     // uploads shed for this one that have not yet ended
	ended    bool
}

func newAdmission(maxBytes, maxRequests int64) *admission {
	return &admission{maxBytes: maxBytes, maxRequests: maxRequests, uploads: map[*upload]struct{}{}, freed: make(chan struct{})}
}

// begin registers the upload of a body on conn.
func (a *admission) begin(conn deadliner) *upload {
	u := &upload{conn: conn, lastRate: math.Inf(1)}
	a.mu.Lock()
	a.uploads[u] = struct{}{}
	a.mu.Unlock()
	return u
}

// received records n more bytes of u's body.
func (u *upload) received(n int) { u.got.Add(int64(n)) }

// filling marks the start of a chunk's read.
func (u *upload) filling(now time.Time) {
	u.fillBase.Store(u.got.Load())
	u.fillStart.Store(now.UnixNano())
}

// filled marks its end, n bytes later.
func (u *upload) filled(now time.Time, n int) {
	d := now.Sub(time.Unix(0, u.fillStart.Swap(0)))
	u.lastRate = float64(n) / max(d.Seconds(), 1e-9)
}

// waitRate is the rate of the chunk u has waited on for shedAfter, if it has.
func (u *upload) waitRate(now time.Time) (float64, bool) {
	start := u.fillStart.Load()
	d := now.Sub(time.Unix(0, start))
	if start == 0 || d < shedAfter {
		return 0, false
	}
	return float64(u.got.Load()-u.fillBase.Load()) / d.Seconds(), true
}

// errBodyBytes is the answer past the byte budget.
var errBodyBytes = failure.New(failure.Unavailable, "too many request body bytes in flight (http.max_body_bytes_in_flight)")

// reserve takes n bytes of the budget for u, shedding slower uploads if it must.
func (a *admission) reserve(u *upload, n int64) error {
	deadline := time.Now().Add(shedWait)
	a.mu.Lock()
	defer a.mu.Unlock()
	u.want = u.held + n // shed uploads hand their bytes over to u.held, up to want
	defer func() { u.want = 0 }()
	for {
		switch {
		case u.shed:
			return errShed
		case u.held >= u.want:
			return nil
		case a.bytes+u.want-u.held <= a.maxBytes:
			a.bytes += u.want - u.held
			u.held = u.want
			return nil
		}
		a.shedSlowest(u, time.Now())
		if u.awaiting == 0 || !a.await(deadline) {
			return errBodyBytes
		}
	}
}

// await waits, unlocking a.mu meanwhile, until bytes are released or deadline passes.
func (a *admission) await(deadline time.Time) bool {
	freed := a.freed
	a.waiting++
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		a.waiting--
	}()
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-freed:
		return true
	case <-t.C:
		return false
	}
}

// shedSlowest sheds, for u, the slowest upload slower than u, if any; under a.mu.
func (a *admission) shedSlowest(u *upload, now time.Time) {
	var victim *upload
	low := u.lastRate
	for v := range a.uploads {
		if r, ok := v.waitRate(now); ok && v != u && !v.shed && r < low {
			victim, low = v, r
		}
	}
	if victim != nil {
		victim.shed, victim.heir = true, u
		u.awaiting++
		a.shed++
		_ = victim.conn.SetReadDeadline(now) // its read fails at once; it answers 503
		a.wake()                             // or, waiting for bytes itself, it gives up
	}
}

// errShed answers an upload shed for a faster one.
var errShed = failure.New(failure.Unavailable, "a slow upload shed: too many request body bytes in flight (http.max_body_bytes_in_flight)")

// wasShed reports whether u was shed.
func (a *admission) wasShed(u *upload) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return u.shed
}

// release gives n of u's bytes back: to the upload it was shed for, if that one still
// runs, else to the budget.
func (a *admission) release(u *upload, n int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	u.held -= n
	a.pass(u, n)
}

// shrink turns the from bytes u holds into the fewer bytes to, as when its body's chunks
// are copied into one buffer of its size (the copy's moment of both is not counted).
func (a *admission) shrink(u *upload, from, to int64) {
	a.release(u, from-to)
}

// pass hands n bytes u no longer holds to its heir, as many as its reservation still
// waits for, and the rest to the budget; under a.mu.
func (a *admission) pass(u *upload, n int64) {
	if h := u.heir; h != nil && !h.ended && h.want > h.held {
		give := min(n, h.want-h.held)
		h.held += give
		n -= give
	}
	a.bytes -= n
	a.wake()
}

// doneReading ends u's upload: its body is in, and it may no longer be shed.
func (a *admission) doneReading(u *upload) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.uploads, u)
}

// end releases everything u holds, once its request is answered (see pass).
func (a *admission) end(u *upload) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.uploads, u)
	u.ended = true
	if h := u.heir; h != nil {
		h.awaiting--
	}
	a.pass(u, u.held)
	u.held = 0
}

// wake tells the reservations waiting, if any, that bytes were released; under a.mu.
func (a *admission) wake() {
	if a.waiting > 0 {
		close(a.freed)
		a.freed = make(chan struct{})
	}
}

// errRequests is the answer past the request cap.
var errRequests = failure.New(failure.Unavailable, "too many requests in flight (http.max_requests_in_flight)")

// enter takes a place among the requests being handled, or fails past the cap.
func (a *admission) enter() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.requests >= a.maxRequests {
		return errRequests
	}
	a.requests++
	return nil
}

// leave gives a place back.
func (a *admission) leave() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.requests--
}

// usage returns the bytes reserved, the requests being handled and the uploads shed so far.
func (a *admission) usage() (bytes, requests int64, shed uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.bytes, a.requests, a.shed
}

// isRefusal reports whether err is a 503 of the caps.
func isRefusal(err error) bool {
	return errors.Is(err, errBodyBytes) || errors.Is(err, errShed) || errors.Is(err, errRequests)
}

// refused counts a refusal and returns how many there were since the last warning, when
// one is due now (0 otherwise).
func (a *admission) refused(now time.Time) int64 {
	a.refusals.Add(1)
	last := a.warned.Load()
	if now.UnixNano()-last < int64(warnEvery) || !a.warned.CompareAndSwap(last, now.UnixNano()) {
		return 0
	}
	return a.refusals.Swap(0)
}
