// Package memkafka is an in-memory stand-in for what the consumer runtime sees of Kafka
// through a kgo.GroupTransactSession and its client (consumers.Session and
// consumers.Fetcher), for model tests that drive the real Loop, Holds and handlers through
// thousands of interleavings in seconds. It keeps franz-go's rules, read in its source
// (pkg/kgo txn.go, consumer_group.go): a poll returns records of assigned, unpaused
// partitions from their position and moves the head that End commits; SetOffsets moves
// position and head; an aborted End rewinds every partition to its committed offset; a
// revoke or a loss between two batches aborts the next one (GroupTransactSession's
// revoked/lost flags); callbacks of a rebalance run only between AllowRebalance and the
// next poll (BlockRebalanceOnPoll). Logs hold committed records only (read-committed);
// transaction markers take no offset.
//
// Each iteration of a Loop is driven by the test: PollRecords waits for a Turn, and
// AllowRebalance reports that the iteration ended. Import it only from _test.go files.
package memkafka

import (
	"context"
	"errors"
	"hash/fnv"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TP names a topic's partition.
type TP struct {
	Topic     string
	Partition int32
}

// Cluster is the Kafka side of one consumer group: the topics' logs and the group's
// committed offsets and assignment. Safe for concurrent use.
type Cluster struct {
	mu        sync.Mutex
	now       func() time.Time
	logs      map[TP][]*kgo.Record
	parts     map[string]int32 // topic → partitions
	reads     []TP             // partitions the group consumes, in order
	committed map[TP]int64
	owner     map[TP]*Session
	version   int // counts changes of logs and committed offsets
}

// NewCluster returns an empty cluster whose records are stamped by now.
func NewCluster(now func() time.Time) *Cluster {
	return &Cluster{now: now, logs: map[TP][]*kgo.Record{}, parts: map[string]int32{},
		committed: map[TP]int64{}, owner: map[TP]*Session{}}
}

// AddTopic creates topic with n partitions; read makes the group consume it.
func (c *Cluster) AddTopic(topic string, n int32, read bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.parts[topic] = n
	for p := range n {
		if read {
			c.reads = append(c.reads, TP{topic, p})
		}
	}
}

// Append commits r as an outside producer would, to r.Partition (or by key when it is
// negative), and returns it with its offset and timestamp.
func (c *Cluster) Append(r *kgo.Record) *kgo.Record {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.appendLocked(r)
}

func (c *Cluster) appendLocked(r *kgo.Record) *kgo.Record {
	if r.Partition < 0 {
		h := fnv.New32a()
		h.Write(r.Key)
		r.Partition = int32(h.Sum32() % uint32(c.parts[r.Topic]))
	}
	tp := TP{r.Topic, r.Partition}
	if r.Timestamp.IsZero() {
		r.Timestamp = c.now()
	}
	r.Offset = int64(len(c.logs[tp]))
	c.logs[tp] = append(c.logs[tp], r)
	c.version++
	return r
}

// Version counts the changes of the logs and the committed offsets: a checker may skip a
// state it has seen.
func (c *Cluster) Version() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.version
}

// Log returns the committed records of tp.
func (c *Cluster) Log(tp TP) []*kgo.Record {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.logs[tp])
}

// Committed returns the group's committed offset of tp (0 when none).
func (c *Cluster) Committed(tp TP) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.committed[tp]
}

// Reads returns the partitions the group consumes.
func (c *Cluster) Reads() []TP {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.reads)
}

// Free returns the partitions the group consumes that no member owns.
func (c *Cluster) Free() []TP {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []TP
	for _, tp := range c.reads {
		if c.owner[tp] == nil {
			out = append(out, tp)
		}
	}
	return out
}

// Session is one member of the group: its assignment, positions and pauses, and its
// transaction. It implements consumers.Session and consumers.Fetcher.
type Session struct {
	c     *Cluster
	turns chan Turn
	ended chan struct{} // one per iteration, at AllowRebalance
	stop  chan struct{}
	// Gone is told of partitions revoked or lost, at the poll after (the member's
	// OnPartitionsRevoked/Lost: Holds.Forget).
	Gone func(cl *Session, partitions map[string][]int32)

	// under c.mu
	owned     map[TP]bool
	pos, head map[TP]int64
	paused    map[TP]bool
	gone      map[TP]bool // revoked or lost, to tell at the next poll
	failNext  bool        // a revoke or a loss since the last End: the next End aborts
	turn      Turn
	produced  []*kgo.Record
	dead      bool
}

// Turn is what the test lets one iteration of the Loop do.
type Turn struct {
	// Limit bounds the records returned from each partition (0: no bound).
	Limit int
	// End is how the batch's transaction ends.
	End EndPlan
	// FailProduce, when above 0, refuses the FailProduce-th record produced in the batch.
	FailProduce int
}

// EndPlan is what happens at the end of a batch.
type EndPlan int

const (
	// Commit commits when the Loop asks to and nothing failed the session.
	Commit EndPlan = iota
	// Abort aborts (a heartbeat or TxnOffsetCommit answered that the member is out of
	// date, or CONCURRENT_TRANSACTIONS): End returns false without an error.
	Abort
	// Lost loses every partition during the batch (the session timed out): another member
	// may be given them at once; End aborts, and the loss is told at the next poll.
	Lost
	// Kill kills the process before End: nothing commits, End returns an error, the session
	// is dead and its partitions free.
	Kill
)

// ErrKilled is End's answer when the process was killed.
var ErrKilled = errors.New("memkafka: the member was killed")

// NewSession returns a member of the group with no partitions.
func (c *Cluster) NewSession() *Session {
	return &Session{c: c, turns: make(chan Turn), ended: make(chan struct{}, 1), stop: make(chan struct{}),
		owned: map[TP]bool{}, pos: map[TP]int64{}, head: map[TP]int64{}, paused: map[TP]bool{}, gone: map[TP]bool{}}
}

// Step lets the Loop run one iteration with t, and waits until it ended (AllowRebalance)
// or the Loop returned (done closed).
func (s *Session) Step(t Turn, done <-chan struct{}) {
	select {
	case s.turns <- t:
	case <-done:
		return
	}
	select {
	case <-s.ended:
	case <-done:
	}
}

// Assign gives the member tps, which must be free; it starts them at their committed
// offsets at its next poll.
func (s *Session) Assign(tps ...TP) {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	for _, tp := range tps {
		if s.c.owner[tp] != nil {
			panic("memkafka: assigning a partition that is owned")
		}
		s.c.owner[tp] = s
		s.owned[tp] = true
		s.pos[tp], s.head[tp] = s.c.committed[tp], s.c.committed[tp]
		delete(s.gone, tp)
	}
}

// Owned returns the partitions the member owns and has not been asked to give up.
func (s *Session) Owned() []TP {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	var out []TP
	for _, tp := range s.c.reads {
		if s.owned[tp] && !s.gone[tp] {
			out = append(out, tp)
		}
	}
	return out
}

// Revoke takes tps from the member at its next poll (a cooperative rebalance); they are
// free once it has been told.
func (s *Session) Revoke(tps ...TP) {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	for _, tp := range tps {
		if s.owned[tp] {
			s.gone[tp] = true
		}
	}
}

// Lose takes every partition from the member now (its session timed out): they are free
// at once, the member is told at its next poll, and its next End aborts.
func (s *Session) Lose() {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	s.loseLocked()
}

func (s *Session) loseLocked() {
	for tp := range s.owned {
		s.gone[tp] = true
		if s.c.owner[tp] == s {
			delete(s.c.owner, tp)
		}
	}
	s.failNext = true
}

// Kill kills the member between two iterations: its partitions are free, nothing of it
// commits again, and its Loop's poll returns.
func (s *Session) Kill() {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	s.killLocked()
}

func (s *Session) killLocked() {
	if s.dead {
		return
	}
	s.dead = true
	for tp := range s.owned {
		if s.c.owner[tp] == s {
			delete(s.c.owner, tp)
		}
	}
	s.owned = map[TP]bool{}
	close(s.stop)
}

// Leave ends a member stopped gracefully (its Loop returned): its partitions are revoked
// (Gone) and free.
func (s *Session) Leave() {
	s.c.mu.Lock()
	gone := map[string][]int32{}
	for tp := range s.owned {
		gone[tp.Topic] = append(gone[tp.Topic], tp.Partition)
		if s.c.owner[tp] == s {
			delete(s.c.owner, tp)
		}
	}
	s.owned = map[TP]bool{}
	s.c.mu.Unlock()
	if len(gone) > 0 && s.Gone != nil {
		s.Gone(s, gone)
	}
}

// Stop makes a waiting poll return, as a closed client does.
func (s *Session) Stop() {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	if !s.dead {
		s.dead = true
		close(s.stop)
	}
}

// PollRecords waits for the test's Turn, tells the member of partitions it lost or gave
// up, then returns the records of its unpaused partitions from their positions.
func (s *Session) PollRecords(_ context.Context, _ int) kgo.Fetches {
	var t Turn
	select {
	case t = <-s.turns:
	case <-s.stop:
		return kgo.NewErrFetch(kgo.ErrClientClosed)
	}
	s.tellGone()
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	s.turn, s.produced = t, nil
	var fetch kgo.Fetch
	for _, tp := range s.c.reads {
		if !s.owned[tp] || s.paused[tp] {
			continue
		}
		log := s.c.logs[tp]
		from := s.pos[tp]
		to := int64(len(log))
		if t.Limit > 0 {
			to = min(to, from+int64(t.Limit))
		}
		if from >= to {
			continue
		}
		records := slices.Clone(log[from:to])
		s.pos[tp], s.head[tp] = to, to
		fetch.Topics = append(fetch.Topics, kgo.FetchTopic{Topic: tp.Topic,
			Partitions: []kgo.FetchPartition{{Partition: tp.Partition, Records: records}}})
	}
	if len(fetch.Topics) == 0 {
		return nil
	}
	return kgo.Fetches{fetch}
}

// tellGone calls Gone with the partitions revoked or lost since the last poll, as
// franz-go's callbacks run after AllowRebalance; a revoke of something fails the next End.
func (s *Session) tellGone() {
	s.c.mu.Lock()
	gone := map[string][]int32{}
	for tp := range s.gone {
		gone[tp.Topic] = append(gone[tp.Topic], tp.Partition)
		delete(s.owned, tp)
		delete(s.pos, tp)
		delete(s.head, tp)
		if s.c.owner[tp] == s {
			delete(s.c.owner, tp)
		}
	}
	s.gone = map[TP]bool{}
	if len(gone) > 0 {
		s.failNext = true
	}
	s.c.mu.Unlock()
	if len(gone) > 0 && s.Gone != nil {
		s.Gone(s, gone)
	}
}

// Begin begins the batch's transaction.
func (s *Session) Begin() error { return nil }

// Produce adds r to the transaction, unless the Turn refuses it.
func (s *Session) Produce(_ context.Context, r *kgo.Record, promise func(*kgo.Record, error)) {
	s.c.mu.Lock()
	s.produced = append(s.produced, r)
	refused := s.dead || s.turn.FailProduce == len(s.produced)
	if r.Timestamp.IsZero() {
		r.Timestamp = s.c.now()
	}
	r.Partition = -1
	s.c.mu.Unlock()
	if refused {
		promise(r, errors.New("memkafka: produce refused"))
		return
	}
	promise(r, nil)
}

// End commits the batch's records and the heads of the member's partitions, or aborts and
// rewinds them, by the Turn's plan and what happened to the session.
func (s *Session) End(_ context.Context, try kgo.TransactionEndTry) (bool, error) {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	switch s.turn.End {
	case Kill:
		s.killLocked()
	case Lost:
		s.loseLocked()
	case Abort:
		s.failNext = true
	}
	if s.dead {
		return false, ErrKilled
	}
	commit := bool(try) && !s.failNext // a refused record made the Loop ask for an abort
	s.failNext = false
	if !commit {
		for tp := range s.owned {
			s.pos[tp], s.head[tp] = s.c.committed[tp], s.c.committed[tp]
		}
		return false, nil
	}
	for _, r := range s.produced {
		s.c.appendLocked(r)
	}
	for tp := range s.owned {
		s.c.committed[tp] = s.head[tp]
	}
	s.c.version++
	return true, nil
}

// AllowRebalance ends the iteration.
func (s *Session) AllowRebalance() {
	select {
	case s.ended <- struct{}{}:
	default:
	}
}

// PauseFetchPartitions pauses tps.
func (s *Session) PauseFetchPartitions(tps map[string][]int32) map[string][]int32 {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	for topic, ps := range tps {
		for _, p := range ps {
			s.paused[TP{topic, p}] = true
		}
	}
	return nil
}

// ResumeFetchPartitions resumes tps.
func (s *Session) ResumeFetchPartitions(tps map[string][]int32) {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	for topic, ps := range tps {
		for _, p := range ps {
			delete(s.paused, TP{topic, p})
		}
	}
}

// SetOffsets moves the position and head of the member's partitions in offsets.
func (s *Session) SetOffsets(offsets map[string]map[int32]kgo.EpochOffset) {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	for topic, ps := range offsets {
		for p, o := range ps {
			if tp := (TP{topic, p}); s.owned[tp] && o.Offset >= 0 {
				s.pos[tp], s.head[tp] = o.Offset, o.Offset
			}
		}
	}
}
