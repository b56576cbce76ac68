package analytics

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/consumers/analytics/store"
)

// startFromStore is called by the group after each assignment, before fetching: every
// assigned partition starts at the next offset the database holds for it, or at its first
// record if the database has counted none. Kafka's committed offsets are ignored: the
// database's are the ones written with the aggregates. Each partition's assignment gets a
// new epoch here, which tags its polls (see assignment).
func (s *Service) startFromStore(ctx context.Context, assigned map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	stored, err := s.store.Offsets(ctx)
	if err != nil {
		return nil, fmt.Errorf("analytics: offsets from the database: %w", err)
	}
	from := map[store.TP]int64{}
	for topic, partitions := range assigned {
		for p := range partitions {
			tp := store.TP{Topic: topic, Partition: p}
			if next, ok := stored[tp]; ok {
				partitions[p] = kgo.NewOffset().At(next).WithEpoch(-1)
			} else {
				partitions[p] = kgo.NewOffset().AtStart()
			}
			from[tp] = stored[tp] // 0, the start, for a partition not stored
		}
	}
	s.owned.start(from)
	return assigned, nil
}

func (s *Service) assigned(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
	s.commits.assign(assigned)
	s.log.Info("analytics: partitions assigned", "partitions", describe(assigned))
}

// revoked is called by the group when partitions are revoked or lost: their queued polls
// are dropped (see assignment) and their offsets no longer copied to Kafka.
func (s *Service) revoked(_ context.Context, _ *kgo.Client, revoked map[string][]int32) {
	s.owned.end(revoked)
	s.commits.revoke(revoked)
	if len(revoked) > 0 {
		s.log.Info("analytics: partitions revoked", "partitions", describe(revoked))
	}
}

func describe(tps map[string][]int32) string {
	out := ""
	for _, t := range slices.Sorted(maps.Keys(tps)) {
		out += fmt.Sprintf("%s%v ", t, tps[t])
	}
	return out
}
