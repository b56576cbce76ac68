package consumers

import (
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Fetcher is the part of a kgo.Client that Holds steers: which partitions are fetched, and
// from where.
type Fetcher interface {
	PauseFetchPartitions(topicPartitions map[string][]int32) map[string][]int32
	ResumeFetchPartitions(topicPartitions map[string][]int32)
	SetOffsets(setOffsets map[string]map[int32]kgo.EpochOffset)
}

// Holds keeps partitions paused until a time. A partition whose head record cannot be
// handled yet (not due, or not decodable for a passing reason) is paused with
// PauseFetchPartitions and rewound to that record, so nothing after it is committed and the
// record is fetched again once the hold is released; the other partitions go on meanwhile.
// Nothing sleeps in the poll loop. The zero value is ready to use; safe for concurrent use.
type Holds struct {
	mu    sync.Mutex
	until map[string]map[int32]time.Time
}

// Hold pauses r's partition and rewinds it to r, until until. Records of that partition
// already polled after r must be skipped by the caller. A later Hold of the same partition
// replaces the earlier one, offset and time: hold a partition at its earliest record not
// handled.
func (h *Holds) Hold(cl Fetcher, r *kgo.Record, until time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.until == nil {
		h.until = map[string]map[int32]time.Time{}
	}
	if h.until[r.Topic] == nil {
		h.until[r.Topic] = map[int32]time.Time{}
	}
	h.until[r.Topic][r.Partition] = until
	cl.PauseFetchPartitions(map[string][]int32{r.Topic: {r.Partition}})
	cl.SetOffsets(map[string]map[int32]kgo.EpochOffset{r.Topic: {r.Partition: {Epoch: -1, Offset: r.Offset}}})
}

// Held reports whether topic's partition is held.
func (h *Holds) Held(topic string, partition int32) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, ok := h.until[topic][partition]
	return ok
}

// Next returns the earliest time a hold ends, and whether there is any.
func (h *Holds) Next() (time.Time, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var next time.Time
	for _, ps := range h.until {
		for _, t := range ps {
			if next.IsZero() || t.Before(next) {
				next = t
			}
		}
	}
	return next, !next.IsZero()
}

// Release resumes the partitions whose hold ended by now.
func (h *Holds) Release(cl Fetcher, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	due := map[string][]int32{}
	for topic, ps := range h.until {
		for p, t := range ps {
			if !t.After(now) {
				due[topic] = append(due[topic], p)
				delete(ps, p)
			}
		}
	}
	if len(due) > 0 {
		cl.ResumeFetchPartitions(due)
	}
}

// Forget resumes and forgets the holds on partitions this member no longer owns (call it
// from OnPartitionsRevoked and OnPartitionsLost): a pause outlives a rebalance in franz-go,
// and the partition, if it comes back, must be fetched from its committed offset.
func (h *Holds) Forget(cl Fetcher, gone map[string][]int32) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for topic, ps := range gone {
		for _, p := range ps {
			delete(h.until[topic], p)
		}
	}
	cl.ResumeFetchPartitions(gone)
}
