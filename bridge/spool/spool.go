// Package spool keeps, on this replica's disk, the records of the sources that spool while
// Kafka cannot take them, and produces them once it can. It is a write-ahead log of segment
// files whose frames carry a CRC each (frame.go), appended with group commit (one write and
// one fsync for every append waiting at the time, writer.go), drained in spool order per
// source (drain.go), and reclaimed a whole segment at a time once drained.
//
// The ingress appends a record in one of three ways, and answers "spooled" once Append
// returns nil, that is once the record is fsynced:
//
//   - Append: Kafka is known to be down, or the source has records spooled already (a new one
//     must not overtake them). The ingress holds the id's dedup reservation and marks it seen.
//   - AppendPending: the record was handed to franz-go, which did not settle it within the
//     produce timeout and may still get it into Kafka. The drainer waits for that outcome
//     (resolve): produced, the entry is done; failed, the drainer produces it. Either way the
//     record is never produced twice (franz-go's idempotent producer never fails a record it
//     may have written).
//   - AppendUnverified: the dedup store could not be asked (rebuilding after a restart,
//     unreachable). Before it may be produced, Verify asks the store: a duplicate is dropped.
//
// Nothing is produced twice across restarts either: entries read back at Open may be in
// Kafka already (a first attempt in doubt, a drain cut short), and Reconcile looks for them
// in the topics before the drainer may produce them. A delivery whose (source, dedup key) is
// in the spool is a duplicate (Has), whatever the dedup store remembers.
//
// What it promises and what it cannot: a spooled record is on this replica's disk until it is
// drained; a disk that is lost loses it.
package spool

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The errors of Append and its variants.
var (
	// ErrFull: the record would take the spool past its bound (Options.MaxBytes).
	ErrFull = errors.New("spool: full")
	// ErrDuplicate: the spool holds a record of the same (source, dedup key), not yet drained.
	ErrDuplicate = errors.New("spool: an earlier delivery of this event is spooled")
	// ErrClosed: the spool is closed.
	ErrClosed = errors.New("spool: closed")
)

// Options configure a spool. MaxBytes is required.
type Options struct {
	// MaxBytes bounds the segment files (and the records waiting to be written).
	MaxBytes int64
	// SegmentBytes is the size past which a new segment is started; 0: MaxBytes/16, between
	// 64 KiB and 64 MiB.
	SegmentBytes int64
	// Sources are the sources whose records may be spooled.
	Sources []string
	// Log receives what the spool has to say; nil discards it.
	Log *slog.Logger
	// Sync makes a file durable; nil: File.Sync (fsync). For tests.
	Sync func(*os.File) error
}

// Spool is a local write-ahead log of records for Kafka. It is safe for concurrent use.
type Spool struct {
	dir    string
	max    int64
	segMax int64
	log    *slog.Logger
	sync   func(*os.File) error
	lock   *os.File
	hash   hasher
	queues map[string]*queue // fixed at Open

	mu        sync.Mutex
	segs      []*segment // oldest first; the last is written
	disk      int64      // bytes of the segment files
	queued    int64      // bytes of entries waiting for the writer
	seq       uint64     // the last entry's
	keys      map[hkey]*item
	count     int // entries not done
	ops       []*op
	broken    error
	closing   bool
	recovered []Mark

	down      atomic.Bool
	wake      chan struct{}
	drainable chan struct{}
	toVerify  chan struct{}
	written   chan struct{}

	appended, drained, dropped, syncs atomic.Uint64
	syncSeconds                       prometheus.Histogram
}

// Mark is an entry read back at Open: the (source, dedup key) of its delivery and when that
// arrived. The dedup store must remember it as seen (unless Unverified), as it did before
// the restart.
type Mark struct {
	Source, Key string
	At          time.Time
	Unverified  bool
}

// Append writes rec and returns once it is durable. rec must carry the header "source" of a
// source of Options.Sources; its dedup key is its dedup.KeyHeader header or its key. The
// caller owns rec's dedup reservation and marks the id seen once Append returns nil.
func (s *Spool) Append(rec *kgo.Record) error {
	_, err := s.append(rec, ready)
	return err
}

// AppendPending is Append for a record that franz-go still holds: the drainer leaves it until
// resolve is called with franz-go's outcome (nil: produced, and never produced again).
// resolve never blocks; only its first call counts.
func (s *Spool) AppendPending(rec *kgo.Record) (resolve func(error), err error) {
	it, err := s.append(rec, doubt)
	if err != nil {
		return nil, err
	}
	return func(err error) { s.resolve(it, err) }, nil
}

// AppendUnverified is Append for a record whose dedup reservation could not be had: it is
// produced only once Verify has reserved it (and dropped if the store says duplicate).
func (s *Spool) AppendUnverified(rec *kgo.Record) error {
	_, err := s.append(rec, unverified)
	return err
}

func (s *Spool) append(rec *kgo.Record, after state) (*item, error) {
	source, key := identity(rec)
	q := s.queues[source]
	if q == nil || key == "" {
		return nil, errNoIdentity
	}
	body := appendRecord(make([]byte, 0, recordSize(rec)), rec)
	it := &item{q: q, key: s.hash.key(source, key), at: rec.Timestamp.UnixNano(), state: writing, after: after}
	o := &op{kind: kindEntry, it: it, body: body, cost: int64(len(body)) + entryOverhead, done: make(chan error, 1)}
	if err := s.enqueue(o); err != nil {
		return nil, err
	}
	if err := <-o.done; err != nil {
		return nil, err
	}
	s.appended.Add(1)
	return it, nil
}

// enqueue admits an entry's op, in the index and for the writer.
func (s *Spool) enqueue(o *op) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closing:
		return ErrClosed
	case s.broken != nil:
		return s.broken
	case s.keys[o.it.key] != nil:
		return ErrDuplicate
	case s.disk+s.queued+o.cost > s.max:
		return fmt.Errorf("%w: %d of %d bytes used", ErrFull, s.disk+s.queued, s.max)
	}
	s.seq++
	o.it.seq = s.seq
	s.queued += o.cost
	s.keys[o.it.key] = o.it
	s.count++
	o.it.q.items = append(o.it.q.items, o.it)
	o.it.q.n.Add(1)
	s.ops = append(s.ops, o)
	signal(s.wake)
	return nil
}

// Holding reports whether a delivery of source must be spooled rather than produced: Kafka is
// known to be down, or source has records spooled that it must not overtake. It takes no lock.
func (s *Spool) Holding(source string) bool {
	if s.down.Load() {
		return true
	}
	q := s.queues[source]
	return q != nil && q.n.Load() > 0
}

// Has reports whether the spool holds a record of (source, key) not yet drained: a delivery of
// it is a duplicate.
func (s *Spool) Has(source, key string) bool {
	q := s.queues[source]
	if q == nil || q.n.Load() == 0 {
		return false
	}
	h := s.hash.key(source, key)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.keys[h] != nil
}

// KafkaDown tells the spool that Kafka did not take a record (or does not answer): until the
// drainer gets a record through, deliveries of spooling sources are spooled at once rather
// than kept waiting for the produce timeout.
func (s *Spool) KafkaDown() { s.down.Store(true) }

// Room reports whether the spool can take a record of n bytes now: it is not broken, its
// bound has room, and so has the file system.
func (s *Spool) Room(n int64) error {
	s.mu.Lock()
	used, broken := s.disk+s.queued, s.broken
	s.mu.Unlock()
	switch {
	case broken != nil:
		return broken
	case used+n > s.max:
		return fmt.Errorf("%w: %d of %d bytes used", ErrFull, used, s.max)
	}
	if free, err := freeBytes(s.dir); err == nil && free < n {
		return fmt.Errorf("%w: the file system of %s has %d bytes free", ErrFull, s.dir, free)
	}
	return nil
}

// resolve applies franz-go's outcome of a record spooled by AppendPending.
func (s *Spool) resolve(it *item, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case it.state != doubt:
	case err == nil:
		s.ackLocked(it)
	default:
		it.state = ready
		signal(s.drainable)
	}
}

// durable moves an entry just written to its next state; the caller holds s.mu.
func (s *Spool) durable(it *item) {
	it.state = it.after
	if it.state == unverified {
		signal(s.toVerify)
	}
}

// ackLocked marks entries done and queues their ack frame; the caller holds s.mu.
func (s *Spool) ackLocked(its ...*item) {
	var seqs []uint64
	for _, it := range its {
		if s.finish(it) {
			seqs = append(seqs, it.seq)
		}
	}
	if len(seqs) == 0 || s.closed() {
		return
	}
	s.ops = append(s.ops, &op{kind: kindAck, seqs: seqs})
	signal(s.wake)
}

// closed reports whether the writer has stopped taking operations; the caller holds s.mu.
func (s *Spool) closed() bool {
	select {
	case <-s.written:
		return true
	default:
		return false
	}
}

// reclaim deletes the oldest segments once all their entries are done, and starts afresh
// when the whole spool is drained, so that a drained spool takes no space. Only the writer
// calls it.
func (s *Spool) reclaim() {
	s.mu.Lock()
	var gone []*segment
	for len(s.segs) > 1 && s.segs[0].live == 0 {
		gone = append(gone, s.segs[0])
		s.disk -= s.segs[0].size
		s.segs = s.segs[1:]
	}
	newest := s.segs[len(s.segs)-1]
	empty := s.count == 0 && len(s.ops) == 0 && newest.size > 0 && !s.closing
	next := s.seq + 1
	s.mu.Unlock()
	for _, seg := range gone {
		if err := seg.remove(); err != nil {
			s.log.Warn("spool: a drained segment could not be deleted", "err", err)
		}
	}
	if empty {
		s.restart(newest, next)
	}
}

// restart replaces the newest segment, drained, by an empty one.
func (s *Spool) restart(old *segment, id uint64) {
	if _, err := s.rotate(id); err != nil {
		s.log.Warn("spool: could not start a new segment; the drained one stays", "err", err)
		return
	}
	s.mu.Lock()
	if s.segs[0] == old && old.live == 0 {
		s.segs = s.segs[1:]
		s.disk -= old.size
	} else {
		old = nil
	}
	s.mu.Unlock()
	if old != nil {
		if err := old.remove(); err != nil {
			// Left on disk, it is read again at the next Open, whose Reconcile finds its
			// records in Kafka: nothing is produced twice, only disk is held.
			s.log.Warn("spool: a drained segment could not be deleted", "err", err)
		}
	}
}

// Close stops taking records, writes what is queued, and closes the files. Call it once the
// drainer has returned and franz-go has settled every record (Flush).
func (s *Spool) Close() error {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	signal(s.wake)
	<-s.written
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for _, seg := range s.segs {
		errs = append(errs, seg.f.Close())
	}
	errs = append(errs, unlockDir(s.lock))
	return errors.Join(errs...)
}

// signal wakes whoever waits on c, without blocking.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
