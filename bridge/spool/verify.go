package spool

import (
	"context"
	"sync"
	"time"

	"github.com/socialbridge/bridge/bridge/dedup"
)

// verifyBatch is how many unverified entries are reserved at once.
const verifyBatch = 256

// Verify gives the entries spooled without a dedup reservation (AppendUnverified) the one they
// lacked, until ctx ends: for each it asks r, waiting at most wait; a duplicate is dropped (an
// earlier delivery of the event was accepted, answered "spooled" or not); otherwise a verify
// frame is made durable first, then the id is marked seen and the entry may be produced.
// Entries whose store cannot be asked are tried again after a backoff.
func (s *Spool) Verify(ctx context.Context, r dedup.Reserver, wait time.Duration) {
	backoff := time.Second
	for {
		its := s.unverifiedItems(ctx)
		if its == nil {
			return
		}
		if s.verify(ctx, r, wait, its) {
			backoff = time.Second
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// unverifiedItems waits for entries to verify, oldest first; nil when ctx ends first.
func (s *Spool) unverifiedItems(ctx context.Context) []*item {
	for {
		s.mu.Lock()
		var its []*item
		for _, q := range s.queues {
			for _, it := range q.items {
				if it.state == unverified && len(its) < verifyBatch {
					its = append(its, it)
				}
			}
		}
		s.mu.Unlock()
		if len(its) > 0 {
			return its
		}
		select {
		case <-s.toVerify:
		case <-ctx.Done():
			return nil
		}
	}
}

// reservation is one entry's outcome of asking the dedup store.
type reservation struct {
	it   *item
	dup  bool
	done func(bool)
	err  error
}

// verify reserves its and settles them; it reports whether every one could be asked.
func (s *Spool) verify(ctx context.Context, r dedup.Reserver, wait time.Duration, its []*item) bool {
	rs := make([]reservation, len(its))
	var wg sync.WaitGroup
	for i, it := range its {
		wg.Go(func() { rs[i] = s.reserve(ctx, r, wait, it) })
	}
	wg.Wait()
	var dups, owned []*item
	ok := true
	for _, res := range rs {
		switch {
		case res.err != nil:
			ok = false
		case res.dup:
			dups = append(dups, res.it)
		default:
			owned = append(owned, res.it)
		}
	}
	s.drop(dups)
	err := s.writeVerify(owned)
	for _, res := range rs {
		if res.err == nil && !res.dup {
			res.done(err == nil)
		}
	}
	if err != nil {
		s.log.Warn("spool: could not record entries as verified; retrying", "err", err)
		return false
	}
	s.ready(owned)
	return ok
}

func (s *Spool) reserve(ctx context.Context, r dedup.Reserver, wait time.Duration, it *item) reservation {
	rec, err := s.read(it)
	if err != nil {
		return reservation{it: it, err: err}
	}
	source, key := identity(rec)
	rctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	dup, done, err := r.Reserve(rctx, source, key, rec.Timestamp)
	return reservation{it: it, dup: dup, done: done, err: err}
}

// drop acknowledges entries found duplicates: they are never produced.
func (s *Spool) drop(its []*item) {
	if len(its) == 0 {
		return
	}
	s.mu.Lock()
	s.ackLocked(its...)
	s.mu.Unlock()
	s.dropped.Add(uint64(len(its)))
	s.log.Info("spool: entries spooled without a dedup reservation were duplicates; dropped", "records", len(its))
}

// writeVerify makes a verify frame of its durable.
func (s *Spool) writeVerify(its []*item) error {
	if len(its) == 0 {
		return nil
	}
	o := &op{kind: kindVerify, seqs: seqsOf(its), done: make(chan error, 1)}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return ErrClosed
	}
	s.ops = append(s.ops, o)
	s.mu.Unlock()
	signal(s.wake)
	return <-o.done
}

// ready lets the drainer take entries now verified.
func (s *Spool) ready(its []*item) {
	s.mu.Lock()
	for _, it := range its {
		if it.state == unverified {
			it.state = ready
		}
	}
	s.mu.Unlock()
	signal(s.drainable)
}

func seqsOf(its []*item) []uint64 {
	seqs := make([]uint64, len(its))
	for i, it := range its {
		seqs[i] = it.seq
	}
	return seqs
}
