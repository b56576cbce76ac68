package analytics

import (
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/consumers/analytics/store"
)

// assignment is what the group gave this member: for each partition it holds, the epoch of
// its current assignment. Every poll is tagged with the epochs its partitions were fetched
// under, while rebalances wait (kgo.BlockRebalanceOnPoll), and the writer drops the runs of
// partitions whose assignment has ended since: revoked, lost, or lost and given back, in
// which case the new assignment's polls read the partition again from the database's
// offsets. Polls of an old and a new assignment of a partition never meet in one batch.
type assignment struct {
	mu    sync.Mutex
	last  uint64              // the last epoch given
	epoch map[store.TP]uint64 // partitions held, by the epoch of their assignment
}

func newAssignment() *assignment { return &assignment{epoch: map[store.TP]uint64{}} }

// start begins a new assignment of each of tps.
func (a *assignment) start(tps []store.TP) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, tp := range tps {
		a.last++
		a.epoch[tp] = a.last
	}
}

// end ends the assignment of each of tps, revoked or lost.
func (a *assignment) end(tps map[string][]int32) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for topic, ps := range tps {
		for _, p := range ps {
			delete(a.epoch, store.TP{Topic: topic, Partition: p})
		}
	}
}

// current reports whether epoch is the assignment tp is held under.
func (a *assignment) current(tp store.TP, epoch uint64) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	e, ok := a.epoch[tp]
	return ok && e == epoch
}

// tag cuts a poll's records into runs of one partition each, tagged with the partition's
// assignment, each run's records the matching part of out (len(recs) long, filled later by
// decoding). Call it before the poll allows rebalances: the epochs are then those the records
// were fetched under. A partition not held (which franz-go rules out) gets epoch 0, which
// is never current.
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
		runs = append(runs, run{tp: tp, epoch: a.epoch[tp], records: out[lo:hi]})
		lo = hi
	}
	return runs
}

// poll is what one PollRecords returned: its records, decoded, and the same in runs.
type poll struct {
	runs    []run
	records []store.Record
}

// run is records of one partition that a poll fetched under one assignment of it.
type run struct {
	tp      store.TP
	epoch   uint64
	records []store.Record
}
