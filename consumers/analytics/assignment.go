package analytics

import (
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"

	"github.com/socialbridge/bridge/consumers/analytics/store"
)

// assignment is what the group gave this member: for each partition it holds, the epoch of
// its current assignment and how far that assignment's polls have read it. Every poll is
// tagged with the epochs its partitions were fetched under, while rebalances wait
// (kgo.BlockRebalanceOnPoll), and the writer drops the runs of partitions whose assignment
// has ended since: revoked, lost, or lost and given back, in which case the new assignment's
// polls read the partition again from the database's offsets. Polls of an old and a new
// assignment of a partition never meet in one batch.
//
// Each run also says the offset it was read from (store.Run.From): where the assignment
// started (the database's offset), then where the run before it ended. The offsets in
// between that held no record (transaction markers, aborted records) are no gap; any other
// is, and the store refuses to pass it.
type assignment struct {
	mu   sync.Mutex
	last uint64 // the last epoch given
	held map[store.TP]*reading
}

// reading is a partition's current assignment.
type reading struct {
	epoch uint64
	next  int64 // the offset the next poll reads it from
}

func newAssignment() *assignment { return &assignment{held: map[store.TP]*reading{}} }

// start begins a new assignment of each partition of from, read from the offset it maps to.
func (a *assignment) start(from map[store.TP]int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for tp, offset := range from {
		a.last++
		a.held[tp] = &reading{epoch: a.last, next: offset}
	}
}

// end ends the assignment of each of tps, revoked or lost.
func (a *assignment) end(tps map[string][]int32) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for topic, ps := range tps {
		for _, p := range ps {
			delete(a.held, store.TP{Topic: topic, Partition: p})
		}
	}
}

// current reports whether epoch is the assignment tp is held under.
func (a *assignment) current(tp store.TP, epoch uint64) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	r, ok := a.held[tp]
	return ok && r.epoch == epoch
}

// tag cuts a poll's records into runs of one partition each, tagged with the partition's
// assignment and read from where its last run ended, each run's records the matching part
// of out (as long as recs, filled in later by decoding). Call it before the poll allows
// rebalances: the epochs are then those the records were fetched under. A partition not held
// (which franz-go rules out) gets epoch 0, which is never current.
func (a *assignment) tag(recs []*kgo.Record, out []store.Record) []run {
	a.mu.Lock()
	defer a.mu.Unlock()
	var runs []run
	for lo := 0; lo < len(recs); {
		tp := store.TP{Topic: recs[lo].Topic, Partition: recs[lo].Partition}
		hi := lo + 1
		for hi < len(recs) && recs[hi].Partition == tp.Partition && recs[hi].Topic == tp.Topic {
			hi++
		}
		r := run{Run: store.Run{TP: tp, From: recs[lo].Offset, Records: out[lo:hi]}}
		if h := a.held[tp]; h != nil {
			r.epoch, r.From, h.next = h.epoch, h.next, recs[hi-1].Offset+1
		}
		runs = append(runs, r)
		lo = hi
	}
	return runs
}

// poll is what one PollRecords returned: its records, decoded, and the same in runs.
type poll struct {
	runs    []run
	records []store.Record
	links   []trace.Link // to the traces of the first records, with tracing on (see batchLinks)
}

// run is records of one partition that a poll fetched under one assignment of it.
type run struct {
	store.Run
	epoch uint64
}
