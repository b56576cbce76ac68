package dedup

import (
	"context"
	"time"
)

// Reserver is the reservation protocol the ingress runs for every authentic delivery, so
// that an event id is produced at most once per window however many times, and to however
// many replicas, it is delivered. Store (in memory, one process) and Redis (shared by
// replicas) implement it; the conformance suite in reserver_test.go holds both to it.
type Reserver interface {
	// Reserve claims (source, id) for a delivery received at now. dup means the id was
	// accepted within the source's window. If another delivery holds the id in flight,
	// Reserve waits for its outcome (accepted: dup; failed: try again, so one waiter becomes
	// the next owner), at most until ctx ends, then returns an error. An error also means the
	// store could not be asked: nothing may be produced without a reservation.
	// Otherwise the caller owns the id and calls done exactly once with the record's final
	// outcome: done(true) remembers the id as seen from now for the window, done(false)
	// releases it. Until done, the id stays reserved however long that takes (a record whose
	// fate Kafka has not settled keeps its reservation). Later calls of done are no-ops.
	Reserve(ctx context.Context, source, id string, now time.Time) (dup bool, done func(accepted bool), err error)
}
