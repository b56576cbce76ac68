package producer

import (
	"context"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kgo"
)

// batcher makes franz-go's linger adaptive. A record that finds nothing in flight is sent
// at once; a record that finds others waiting for Kafka lingers until one of them is
// answered (a produce request came back), at most the client's linger, and then goes with
// everything that gathered meanwhile. So at low load no record waits, and under load each
// produce request carries what arrived during the previous one: batches grow with the
// load, and the broker, whose cost is mostly per batch and per request, writes more records
// for its CPU. franz-go alone either lingers every record (a fixed linger adds itself to
// every answer at low load) or, with no linger, sends whatever is buffered whenever one of
// its five produce requests per broker is free, in batches of a few records.
//
// One exception: franz-go learns a topic's partitions with the first record produced to it,
// and a flush cannot reach a record before it is placed in a partition, so the first record
// of each topic after the client starts may wait the whole linger, once.
type batcher struct {
	cl *kgo.Client
	// pending counts the records handed to franz-go whose promise has not run; lingering
	// the records produced since the last flush (waiting, or sent by the linger's expiry).
	// lingering ≥ pending means that nothing is in flight.
	pending, lingering atomic.Int64
	kick               chan struct{}
}

func newBatcher(cl *kgo.Client) *batcher {
	b := &batcher{cl: cl, kick: make(chan struct{}, 1)}
	go b.run()
	return b
}

// producing is called before a record is handed to franz-go, produced after.
func (b *batcher) producing() { b.pending.Add(1) }

func (b *batcher) produced() {
	// Either this sees the promise's decrement, or the promise sees this increment and
	// kicks: a record never lingers for want of either (the atomics are sequentially
	// consistent).
	if b.lingering.Add(1) >= b.pending.Load() {
		b.flush()
	}
}

// settled is called by each record's promise: a produce request came back, so what lingers
// may go.
func (b *batcher) settled() {
	b.pending.Add(-1)
	if b.lingering.Load() > 0 {
		select {
		case b.kick <- struct{}{}:
		default:
		}
	}
}

// run flushes on each kick until the client closes; kicks that arrive while it flushes
// are one.
func (b *batcher) run() {
	done := b.cl.Context().Done()
	for {
		select {
		case <-done:
			return
		case <-b.kick:
			b.flush()
		}
	}
}

// flush ends the lingers of every partition, so that what is buffered is sent now. Flush
// with a context already done does only that: it stops the lingers, starts the drains, and
// returns without waiting for the records.
func (b *batcher) flush() {
	if b.lingering.Swap(0) > 0 {
		_ = b.cl.Flush(done)
	}
}

// done is a context that has ended.
var done = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()
