package analytics

import (
	"context"
	"log/slog"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/socialbridge/bridge/consumers/analytics/store"
)

// kafkaCommits copies the database's offsets to the group's committed offsets in Kafka after
// each batch commits, so that lag tools (kafka-consumer-groups.sh, kadm, bridge_consumer_lag)
// show how far behind the group is. It is best effort and informational: the consumer never
// reads them back (the database says where each partition resumes, see startFromStore), a
// failed commit is only logged, and a crash between the database's commit and Kafka's only
// leaves Kafka's copy behind until the next batch. Commits run on a goroutine of their own,
// the latest offsets replacing those not yet sent, so a slow coordinator never holds a batch.
type kafkaCommits struct {
	mu       sync.Mutex
	pending  map[store.TP]int64 // offsets committed to the database, not yet to Kafka
	assigned map[store.TP]bool  // partitions the group gave this member: the only ones committed
	wake     chan struct{}
}

func newKafkaCommits() *kafkaCommits {
	return &kafkaCommits{pending: map[store.TP]int64{}, assigned: map[store.TP]bool{}, wake: make(chan struct{}, 1)}
}

// add takes the next offsets a committed batch stored.
func (k *kafkaCommits) add(next map[store.TP]int64) {
	k.mu.Lock()
	for tp, o := range next {
		k.pending[tp] = max(k.pending[tp], o)
	}
	k.mu.Unlock()
	select {
	case k.wake <- struct{}{}:
	default:
	}
}

func (k *kafkaCommits) assign(tps map[string][]int32) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for topic, ps := range tps {
		for _, p := range ps {
			k.assigned[store.TP{Topic: topic, Partition: p}] = true
		}
	}
}

// revoke forgets partitions another member may now own, and their pending offsets: this
// member's copy of them could only be older than the new owner's.
func (k *kafkaCommits) revoke(tps map[string][]int32) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for topic, ps := range tps {
		for _, p := range ps {
			tp := store.TP{Topic: topic, Partition: p}
			delete(k.assigned, tp)
			delete(k.pending, tp)
		}
	}
}

// take returns the pending offsets of assigned partitions, as franz-go commits them, and
// forgets them.
func (k *kafkaCommits) take() map[string]map[int32]kgo.EpochOffset {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := map[string]map[int32]kgo.EpochOffset{}
	for tp, o := range k.pending {
		if !k.assigned[tp] {
			continue
		}
		if out[tp.Topic] == nil {
			out[tp.Topic] = map[int32]kgo.EpochOffset{}
		}
		out[tp.Topic][tp.Partition] = kgo.EpochOffset{Epoch: -1, Offset: o}
	}
	clear(k.pending)
	return out
}

// run commits whatever add brings until ctx ends.
func (k *kafkaCommits) run(ctx context.Context, cl *kgo.Client, log *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-k.wake:
		}
		k.flush(ctx, cl, log)
	}
}

// flush commits the pending offsets and waits for the answer.
func (k *kafkaCommits) flush(ctx context.Context, cl *kgo.Client, log *slog.Logger) {
	offsets := k.take()
	if len(offsets) == 0 {
		return
	}
	done := make(chan struct{})
	cl.CommitOffsets(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		defer close(done)
		if err == nil && resp != nil {
		topics:
			for _, t := range resp.Topics {
				for _, p := range t.Partitions {
					if err = kerr.ErrorForCode(p.ErrorCode); err != nil {
						break topics
					}
				}
			}
		}
		if err != nil {
			log.Debug("analytics: offsets not copied to Kafka (informational only; the database keeps them)", "err", err)
		}
	})
	<-done
}
