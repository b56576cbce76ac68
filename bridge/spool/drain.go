package spool

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Producer is where the drainer sends records: a *kgo.Client (idempotent, acks=all, with the
// ingress's options), whose promise reports each record's final outcome.
type Producer interface {
	TryProduce(ctx context.Context, r *kgo.Record, promise func(*kgo.Record, error))
}

// DrainOptions bound the drainer's batches and its retries.
type DrainOptions struct {
	// MaxRecords and MaxBytes bound a batch handed to Kafka at once; 0: 1024 records, 4 MiB.
	MaxRecords int
	MaxBytes   int64
	// MinBackoff and MaxBackoff space the attempts after a batch Kafka did not take: each
	// failure doubles the wait, up to MaxBackoff; 0: 250 ms and 5 s.
	MinBackoff, MaxBackoff time.Duration
}

func (o *DrainOptions) fill() {
	if o.MaxRecords <= 0 {
		o.MaxRecords = 1024
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = 4 << 20
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 250 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 5 * time.Second
	}
}

// Drain produces the records ready to go until ctx ends. A batch is the oldest ready records of every source, in spool order, handed to p
// at once: franz-go keeps their order within each partition, and a source's records wait
// behind one of its own whose fate is open (a first attempt in doubt, an entry not yet
// verified or reconciled). A record p acknowledges is done; one it fails stays, and is
// produced again after a backoff, alone (a probe) until one gets through: Kafka is down.
//
// A record that fails while a later one of its source gets through (to another partition)
// is produced after it: the order of a source's records holds except across such a failure.
// Nothing is produced twice, nothing is dropped. When ctx ends with a batch still with p,
// Drain returns at once and the batch's outcomes are applied as they come (p should be given a
// chance to Flush, then closed: a record it fails stays in the spool, and one whose fate it
// never told is looked for in Kafka after a restart).
func (s *Spool) Drain(ctx context.Context, p Producer, o DrainOptions) {
	o.fill()
	backoff := o.MinBackoff
	for {
		limit := o.MaxRecords
		if s.down.Load() {
			limit = 1
		}
		its := s.take(ctx, limit, o.MaxBytes)
		if its == nil {
			return
		}
		failed, ok := s.produce(ctx, p, its)
		if !ok {
			return
		}
		if failed == 0 {
			s.down.Store(false)
			backoff = o.MinBackoff
			continue
		}
		s.down.Store(true)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, o.MaxBackoff)
	}
}

// take waits for records ready to go and marks up to limit of them (and about maxBytes) in
// flight; nil when ctx ends first.
func (s *Spool) take(ctx context.Context, limit int, maxBytes int64) []*item {
	for {
		s.mu.Lock()
		its := s.pick(limit, maxBytes)
		for _, it := range its {
			it.state = flight
		}
		s.mu.Unlock()
		if len(its) > 0 {
			return its
		}
		select {
		case <-s.drainable:
		case <-ctx.Done():
			return nil
		}
	}
}

// pick returns the oldest ready records, each source's up to the first that is not ready;
// the caller holds s.mu.
func (s *Spool) pick(limit int, maxBytes int64) []*item {
	var its []*item
	for _, q := range s.queues {
		n := 0
		for _, it := range q.items {
			if it.state == done {
				continue
			}
			if it.state != ready || n == limit {
				break
			}
			its = append(its, it)
			n++
		}
	}
	slices.SortFunc(its, func(a, b *item) int { return compareSeq(a.seq, b.seq) })
	var bytes int64
	for i, it := range its {
		if bytes += int64(it.size); i == limit || (i > 0 && bytes > maxBytes) {
			return its[:i]
		}
	}
	return its
}

// produce hands its to p, waits for every outcome, and returns how many failed; ok is false
// when ctx ended first (the outcomes are then applied as they come).
func (s *Spool) produce(ctx context.Context, p Producer, its []*item) (failed int, ok bool) {
	b := s.hand(p, its)
	select {
	case <-b.settled:
		return s.apply(b), true
	case <-ctx.Done():
		go func() {
			<-b.settled
			s.apply(b)
		}()
		return 0, false
	}
}

// batch is records handed to the producer at once, with their outcomes (errs[i] is its[i]'s).
type batch struct {
	its     []*item
	errs    []error
	settled chan struct{} // closed once every outcome is in errs
}

// errLost is the outcome of a record that cannot be read back: the disk corrupted it.
var errLost = errors.New("spool: the record cannot be read back")

// hand gives its records to p.
func (s *Spool) hand(p Producer, its []*item) *batch {
	b := &batch{its: its, errs: make([]error, len(its)), settled: make(chan struct{})}
	var wg sync.WaitGroup
	for i, it := range its {
		rec, err := s.read(it)
		if err != nil {
			s.log.Error("spool: a record cannot be read back (the disk corrupted it); it is lost", "seq", it.seq, "err", err)
			b.errs[i] = errLost
			continue
		}
		wg.Add(1)
		// The record's own delivery timeout bounds it, not a context (see producer.Kafka).
		p.TryProduce(context.Background(), rec, func(_ *kgo.Record, err error) {
			b.errs[i] = err
			wg.Done()
		})
	}
	go func() {
		wg.Wait()
		close(b.settled)
	}()
	return b
}

// apply marks the records of b acknowledged (or lost) done and the failed ones ready again,
// and returns how many failed.
func (s *Spool) apply(b *batch) (failed int) {
	var finished []*item
	var first error
	drained := 0
	s.mu.Lock()
	for i, it := range b.its {
		switch err := b.errs[i]; {
		case err == nil || err == errLost:
			finished = append(finished, it)
			drained += b2i(err == nil)
		default:
			it.state = ready
			failed++
			first = cmp.Or(first, err)
		}
	}
	s.ackLocked(finished...)
	s.mu.Unlock()
	s.drained.Add(uint64(drained))
	if failed > 0 {
		s.log.Warn("spool: kafka did not take spooled records; retrying", "failed", failed, "of", len(b.its), "err", first)
	}
	return failed
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// read reads the record of it back from its segment.
func (s *Spool) read(it *item) (*kgo.Record, error) {
	buf := make([]byte, it.size)
	if _, err := it.seg.f.ReadAt(buf, it.off); err != nil {
		return nil, err
	}
	kind, payload, _, err := nextFrame(buf)
	if err == nil && kind != kindEntry {
		err = errTorn
	}
	if err != nil {
		return nil, err
	}
	e, err := readEntry(payload)
	return e.rec, err
}
