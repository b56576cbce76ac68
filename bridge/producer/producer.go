package producer

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/bridge/failure"
)

// Kafka produces records and waits for their acknowledgement, at most the produce timeout.
// On a client with a linger (kgo.ProducerLinger), the linger is a bound, not a delay: a
// record that finds nothing in flight is sent at once (see batcher).
type Kafka struct {
	cl      *kgo.Client
	timeout time.Duration
	b       *batcher // nil without a linger
}

// New returns a producer on cl that answers within timeout.
func New(cl *kgo.Client, timeout time.Duration) *Kafka {
	k := &Kafka{cl: cl, timeout: timeout}
	if linger, _ := cl.OptValue(kgo.ProducerLinger).(time.Duration); linger > 0 {
		k.b = newBatcher(cl)
	}
	return k
}

// pending carries one record's outcome from franz-go's promise to the waiting request. It
// is pooled with its timer, so that a request allocates neither.
type pending struct {
	done   chan error
	timer  *time.Timer
	mu     sync.Mutex
	late   bool
	settle func(error)
	b      *batcher
}

var pendings = sync.Pool{New: func() any { return &pending{done: make(chan error, 1)} }}

// Produce sends rec and waits for Kafka's acknowledgement; on success rec's Partition and
// Offset are set. If the wait ends first, it returns a failure.Unavailable error while the
// record's fate is still unknown (franz-go cannot take back a record already sent when
// producing idempotently): settle is then called once, later, with the final outcome.
// Otherwise settle is called with the outcome before Produce returns.
func (k *Kafka) Produce(rec *kgo.Record, settle func(error)) error {
	p := pendings.Get().(*pending)
	p.settle, p.late, p.b = settle, false, k.b
	if k.b != nil {
		k.b.producing()
	}
	// The record's own delivery timeout bounds it, not a context: a canceled context would
	// fail the other requests' records batched with it.
	k.cl.TryProduce(context.Background(), rec, p.promise)
	if k.b != nil {
		k.b.produced()
	}
	// Since Go 1.23 a stopped or reset timer delivers no stale tick, so a pooled one is as
	// good as new. It is stopped before p goes back to the pool, where another request may
	// take it at once.
	if p.timer == nil {
		p.timer = time.NewTimer(k.timeout)
	} else {
		p.timer.Reset(k.timeout)
	}
	select {
	case err := <-p.done:
		return p.finish(err)
	case <-p.timer.C:
		p.mu.Lock()
		select {
		case err := <-p.done:
			p.mu.Unlock()
			return p.finish(err)
		default:
			p.late = true
			p.mu.Unlock()
			return failure.New(failure.Unavailable, "kafka did not acknowledge within %s", k.timeout)
		}
	}
}

// finish settles a record whose outcome came in time, and gives p back to the pool.
func (p *pending) finish(err error) error {
	p.timer.Stop()
	settle := p.settle
	p.settle = nil
	pendings.Put(p)
	settle(err)
	return classify(err)
}

func (p *pending) promise(_ *kgo.Record, err error) {
	if p.b != nil {
		p.b.settled()
	}
	p.mu.Lock()
	late := p.late
	if !late {
		p.done <- err
	}
	p.mu.Unlock()
	if late {
		p.settle(err)
	}
}

func classify(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, kerr.MessageTooLarge), errors.Is(err, kerr.RecordListTooLarge):
		// Retrying cannot help: the provider must be told, not asked to come back.
		return failure.Wrap(failure.TooLarge, "the record is larger than kafka accepts", err)
	case errors.Is(err, kgo.ErrMaxBuffered):
		return failure.Wrap(failure.Unavailable, "too many records waiting for kafka", err)
	default:
		return failure.Wrap(failure.Unavailable, "kafka did not acknowledge the record", err)
	}
}
