package spool

import (
	"fmt"
	"slices"
	"time"
)

// The writer is one goroutine that owns the files: it takes every operation queued since its
// last write, writes their frames with one write and one fsync (group commit: concurrent
// deliveries share an fsync), then tells their waiters, rotates the newest segment when it is
// full and deletes the segments drained.

// op is one frame to write: an entry (it), or an ack or verify of seqs.
type op struct {
	kind byte
	it   *item
	body []byte // an entry's record, encoded by appendRecord
	cost int64  // an entry's bytes counted against the bound while queued
	seqs []uint64
	done chan error // nil: nobody waits
}

func (s *Spool) writeLoop() {
	defer close(s.written)
	var buf []byte
	for {
		ops, last := s.takeOps()
		if len(ops) > 0 {
			buf = s.commit(ops, buf[:0])
		}
		if last {
			return
		}
	}
}

// takeOps waits for operations; last is set once the spool is closing and none are left.
func (s *Spool) takeOps() (ops []*op, last bool) {
	for {
		s.mu.Lock()
		ops, s.ops = s.ops, nil
		closing := s.closing
		s.mu.Unlock()
		if len(ops) > 0 || closing {
			return ops, closing && len(ops) == 0
		}
		<-s.wake
	}
}

// commit writes ops to the newest segment, syncs it and settles them.
func (s *Spool) commit(ops []*op, buf []byte) []byte {
	for _, o := range ops {
		buf = o.frame(buf)
	}
	seg, err := s.segmentFor(int64(len(buf)))
	if err == nil {
		err = s.write(seg, buf)
	}
	s.settle(ops, seg, int64(len(buf)), err)
	s.reclaim()
	return buf
}

func (o *op) frame(b []byte) []byte {
	start := len(b)
	if o.kind == kindEntry {
		flags := byte(0)
		if o.it.after == unverified {
			flags = flagUnverified
		}
		b = appendFrame(b, kindEntry, func(b []byte) []byte { return appendEntryBody(b, o.it.seq, flags, o.body) })
		o.it.off, o.it.size = int64(start), len(b)-start // off is relative until settle
		return b
	}
	slices.Sort(o.seqs)
	return appendFrame(b, o.kind, func(b []byte) []byte { return appendSeqs(b, o.seqs) })
}

// segmentFor returns the segment to write n bytes to: the newest, or a new one when the newest
// holds frames and n more would take it past the segment size.
func (s *Spool) segmentFor(n int64) (*segment, error) {
	s.mu.Lock()
	seg := s.segs[len(s.segs)-1]
	full := seg.size > 0 && seg.size+n > s.segMax
	next := s.seq + 1
	s.mu.Unlock()
	if !full {
		return seg, nil
	}
	return s.rotate(next)
}

// rotate starts a new newest segment; the old one stays for the drainer.
func (s *Spool) rotate(id uint64) (*segment, error) {
	s.mu.Lock()
	id = max(id, s.segs[len(s.segs)-1].id+1)
	s.mu.Unlock()
	seg, err := createSegment(s.dir, id, s.sync)
	if err != nil {
		return nil, fmt.Errorf("spool: new segment: %w", err)
	}
	s.mu.Lock()
	s.segs = append(s.segs, seg)
	s.mu.Unlock()
	return seg, nil
}

// write appends buf to seg and makes it durable. On failure seg is cut back to what it held,
// so that a partial write never sits before the next one; a spool whose file cannot be cut
// back, or whose fsync failed and still fails, is broken: it refuses appends until restarted.
func (s *Spool) write(seg *segment, buf []byte) error {
	start := time.Now()
	_, err := seg.f.WriteAt(buf, seg.size)
	if err == nil {
		err = s.sync(seg.f)
		s.syncs.Add(1)
	}
	s.syncSeconds.Observe(time.Since(start).Seconds())
	if err == nil {
		return nil
	}
	err = fmt.Errorf("spool: write: %w", err)
	if terr := seg.f.Truncate(seg.size); terr != nil {
		s.breakDown(fmt.Errorf("%w; cutting the segment back failed too: %v", err, terr))
	} else if serr := s.sync(seg.f); serr != nil {
		s.breakDown(fmt.Errorf("%w; syncing the segment cut back failed too: %v", err, serr))
	}
	return err
}

func (s *Spool) breakDown(err error) {
	s.mu.Lock()
	s.broken = err
	s.mu.Unlock()
	s.log.Error("the spool cannot write: it refuses deliveries until the bridge is restarted", "err", err)
}

// settle applies the outcome of writing n bytes of ops to seg, and wakes their waiters.
func (s *Spool) settle(ops []*op, seg *segment, n int64, err error) {
	s.mu.Lock()
	for _, o := range ops {
		if o.kind != kindEntry {
			continue
		}
		s.queued -= o.cost
		if err != nil {
			s.finish(o.it)
			continue
		}
		o.it.seg, o.it.off = seg, seg.size+o.it.off
		seg.live++
		s.durable(o.it)
	}
	if err == nil {
		seg.size += n
		s.disk += n
	}
	s.mu.Unlock()
	for _, o := range ops {
		if o.done != nil {
			o.done <- err
		}
	}
	if err == nil {
		signal(s.drainable)
	}
}
