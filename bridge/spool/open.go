package spool

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Open opens the spool in dir, creating it if need be, and reads back what it holds: the
// entries not yet drained, in spool order (see Marks), the end of the newest segment cut back
// to its last whole frame if a write was torn. New entries go to a new segment. The directory
// is locked: a second process opening it fails.
func Open(dir string, o Options) (*Spool, error) {
	if o.MaxBytes <= 0 {
		return nil, errors.New("spool: MaxBytes must be positive")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	s := newSpool(dir, o, lock)
	if err := s.recover(); err != nil {
		s.closeFiles()
		unlockDir(lock)
		return nil, err
	}
	go s.writeLoop()
	return s, nil
}

func newSpool(dir string, o Options, lock *os.File) *Spool {
	s := &Spool{
		dir: dir, max: o.MaxBytes, segMax: o.SegmentBytes, log: o.Log, sync: o.Sync, lock: lock,
		hash: newHasher(), queues: map[string]*queue{}, keys: map[hkey]*item{},
		wake: make(chan struct{}, 1), drainable: make(chan struct{}, 1), toVerify: make(chan struct{}, 1),
		written: make(chan struct{}),
		syncSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "bridge_spool_sync_seconds",
			Help:    "Time to write and fsync one group of spool frames (group commit).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
	}
	if s.segMax <= 0 {
		s.segMax = min(max(o.MaxBytes/16, 64<<10), 64<<20)
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.sync == nil {
		s.sync = (*os.File).Sync
	}
	for _, name := range o.Sources {
		s.queues[name] = &queue{name: name}
	}
	return s
}

// recover reads the segments back into the index and starts a new segment.
func (s *Spool) recover() error {
	ids, err := listSegments(s.dir)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	r := recovery{s: s, bySeq: map[uint64]*item{}, keys: map[*item]Mark{}}
	for i, id := range ids {
		if err := r.read(id, i == len(ids)-1); err != nil {
			return err
		}
	}
	r.index()
	next := s.seq + 1
	if len(s.segs) > 0 {
		next = max(next, s.segs[len(s.segs)-1].id+1)
	}
	seg, err := createSegment(s.dir, next, s.sync)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	s.segs = append(s.segs, seg)
	s.dropDrained()
	if len(r.order) > 0 {
		s.log.Info("spool: read back the records not yet drained", "records", s.count, "bytes", s.disk, "torn_bytes", r.torn)
	}
	return nil
}

// recovery is the state of reading the segments back.
type recovery struct {
	s     *Spool
	bySeq map[uint64]*item
	order []*item
	keys  map[*item]Mark
	torn  int64
}

// read reads one segment's frames. A torn or corrupt frame ends what is read of it: the newest
// segment (last) is cut back there; in an older one, which no crash can tear, the rest is
// reported lost.
func (r *recovery) read(id uint64, last bool) error {
	s := r.s
	path := segmentPath(s.dir, id)
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	seg := &segment{id: id, f: f}
	s.segs = append(s.segs, seg)
	off := 0
	for off < len(b) {
		kind, payload, n, err := nextFrame(b[off:])
		if err == nil {
			err = r.apply(seg, int64(off), n, kind, payload)
		}
		if err != nil {
			break
		}
		off += n
	}
	seg.size = int64(off)
	s.disk += seg.size
	if off == len(b) {
		return nil
	}
	r.torn += int64(len(b) - off)
	if !last {
		s.log.Error("spool: a segment is corrupt; what follows the corruption is lost", "segment", path, "at", off, "lost_bytes", len(b)-off)
		return nil
	}
	s.log.Warn("spool: the last write was torn (a crash while writing); cut back to the last whole record", "segment", path, "at", off, "torn_bytes", len(b)-off)
	if err := f.Truncate(int64(off)); err != nil {
		return fmt.Errorf("spool: cutting back a torn write: %w", err)
	}
	return s.sync(f)
}

// apply takes one frame read back.
func (r *recovery) apply(seg *segment, off int64, n int, kind byte, payload []byte) error {
	switch kind {
	case kindEntry:
		return r.entry(seg, off, n, payload)
	case kindAck, kindVerify:
		seqs, err := readSeqs(payload)
		if err != nil {
			return err
		}
		for _, seq := range seqs {
			it := r.bySeq[seq]
			switch {
			case it == nil:
			case kind == kindAck:
				it.state = done
			case it.state == unverified:
				it.state = recovered
			}
		}
		return nil
	}
	return errTorn
}

func (r *recovery) entry(seg *segment, off int64, n int, payload []byte) error {
	e, err := readEntry(payload)
	if err != nil {
		return err
	}
	source, key := identity(e.rec)
	q := r.s.queues[source]
	if q == nil { // a source that no longer spools: its records are still drained
		q = &queue{name: source}
		r.s.queues[source] = q
	}
	it := &item{seq: e.seq, q: q, key: r.s.hash.key(source, key), at: e.rec.Timestamp.UnixNano(), seg: seg, off: off, size: n, state: recovered}
	if e.flags&flagUnverified != 0 {
		it.state = unverified
	}
	r.bySeq[e.seq] = it
	r.order = append(r.order, it)
	r.keys[it] = Mark{Source: source, Key: key, At: e.rec.Timestamp}
	r.s.seq = max(r.s.seq, e.seq)
	return nil
}

// index puts the entries not done into the queues, in spool order, and keeps their marks.
func (r *recovery) index() {
	s := r.s
	slices.SortFunc(r.order, func(a, b *item) int { return compareSeq(a.seq, b.seq) })
	for _, it := range r.order {
		if it.state == done || s.keys[it.key] != nil {
			continue // drained; or a second entry of one id, which no append makes
		}
		it.seg.live++
		it.q.items = append(it.q.items, it)
		it.q.n.Add(1)
		s.keys[it.key] = it
		s.count++
		m := r.keys[it]
		m.Unverified = it.state == unverified
		s.recovered = append(s.recovered, m)
	}
	signal(s.toVerify)
}

func compareSeq(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// dropDrained deletes the oldest segments read back that hold nothing left to drain.
func (s *Spool) dropDrained() {
	for len(s.segs) > 1 && s.segs[0].live == 0 {
		s.disk -= s.segs[0].size
		if err := s.segs[0].remove(); err != nil {
			s.log.Warn("spool: a drained segment could not be deleted", "err", err)
		}
		s.segs = s.segs[1:]
	}
}

func (s *Spool) closeFiles() {
	for _, seg := range s.segs {
		seg.f.Close()
	}
}

// Marks returns the entries read back at Open and not yet drained, in spool order, once:
// the dedup store must remember each (but the unverified) as seen before the spool's
// drainer runs, since the store may have lost what it was told before the restart.
func (s *Spool) Marks() []Mark {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.recovered
	s.recovered = nil
	return m
}

// Oldest returns when the delivery of the oldest record not yet drained arrived, and false
// when there is none.
func (s *Spool) Oldest() (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	oldest := int64(0)
	for _, q := range s.queues {
		for _, it := range q.items {
			if it.state != done {
				if oldest == 0 || it.at < oldest {
					oldest = it.at
				}
				break
			}
		}
	}
	return time.Unix(0, oldest), oldest != 0
}
