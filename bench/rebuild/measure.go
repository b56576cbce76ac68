package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/bridge/dedup"
	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/event"
)

type result struct {
	records, ids       int
	plainPerSec        float64
	seconds, idsPerSec float64
	heapMiB, rssMiB    float64
	// the snapshot path: writing one, and a rebuild from it plus the records since
	writeSeconds, snapMiB float64
	snapSeconds           float64
	snapIDs               int
	caughtUp              int64
}

func (r *result) row() string {
	return fmt.Sprintf("| %d | %d | %.0f | %.1f | %.0f | %.0f | %.0f | %.2f | %.0f | %.2f | %.0f | %d |",
		r.records, r.ids, r.plainPerSec, r.seconds, r.idsPerSec, r.heapMiB, r.rssMiB,
		r.writeSeconds, r.snapMiB, r.snapSeconds, float64(r.snapIDs)/r.snapSeconds, r.caughtUp)
}

// rebuild times a plain read of the records (the floor any rebuild from the topics meets),
// then dedup.Rebuild into a Store with room for all of them.
func rebuild(ctx context.Context, cl *kgo.Client, k config.Kafka, n int) (*result, error) {
	topics := event.Topics(k.TopicPrefix)
	topics = topics[:len(topics)-1]
	res := &result{records: n}
	start := time.Now()
	read, err := plainRead(ctx, cl, topics)
	if err != nil {
		return nil, err
	}
	if read != int64(n) {
		return nil, fmt.Errorf("%w: %d of %d", errShort, read, n)
	}
	res.plainPerSec = float64(read) / time.Since(start).Seconds()
	logf("plain read of %d records: %.0f/s", read, res.plainPerSec)

	base := heapMiB()
	s := dedup.New(24*time.Hour, max(n, config.Default().Dedup.MaxIDs), dedup.Options{})
	start = time.Now()
	st, err := dedup.Rebuild(ctx, cl, topics, time.Now(), s, dedup.RebuildOptions{})
	if err != nil {
		return nil, err
	}
	res.seconds = time.Since(start).Seconds()
	res.ids, res.idsPerSec = st.IDs, float64(st.IDs)/res.seconds
	res.heapMiB, res.rssMiB = heapMiB()-base, peakRSSMiB()
	logf("rebuild of %d ids: %.1f s, %.0f ids/s", st.IDs, res.seconds, res.idsPerSec)
	if s.Len() != n {
		return nil, fmt.Errorf("rebuilt %d ids of %d", s.Len(), n)
	}
	return res, fromSnapshot(ctx, cl, topics, s, res)
}

// fromSnapshot writes s's snapshot, then times a rebuild of a new Store from it plus the
// records Kafka received since.
func fromSnapshot(ctx context.Context, cl *kgo.Client, topics []string, s *dedup.Store, res *result) error {
	dir, err := os.MkdirTemp("", "rebuild-snapshot-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "dedup.snapshot")
	start := time.Now()
	if _, err := s.WriteSnapshot(path, time.Now()); err != nil {
		return err
	}
	res.writeSeconds = time.Since(start).Seconds()
	if fi, err := os.Stat(path); err == nil {
		res.snapMiB = float64(fi.Size()) / (1 << 20)
	}
	fresh := dedup.New(24*time.Hour, max(res.records, config.Default().Dedup.MaxIDs), dedup.Options{})
	start = time.Now()
	st, err := dedup.Rebuild(ctx, cl, topics, time.Now(), fresh, dedup.RebuildOptions{Snapshot: path})
	if err != nil {
		return err
	}
	res.snapSeconds, res.snapIDs, res.caughtUp = time.Since(start).Seconds(), st.IDs, st.Records
	logf("rebuild from the snapshot: %d ids (%d records since read from kafka) in %.2f s", st.IDs, st.Records, res.snapSeconds)
	if fresh.Len() != res.records || st.FromSnapshot == 0 {
		return fmt.Errorf("rebuilt %d ids of %d from the snapshot (%d entries; %v)", fresh.Len(), res.records, st.FromSnapshot, st.SnapshotErr)
	}
	return nil
}

// plainRead consumes every record of topics once and returns how many there were.
func plainRead(ctx context.Context, cl *kgo.Client, topics []string) (int64, error) {
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topics...)
	if err != nil {
		return 0, err
	}
	left := map[string]map[int32]int64{}
	var want int64
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			if left[o.Topic] == nil {
				left[o.Topic] = map[int32]int64{}
			}
			left[o.Topic][o.Partition] = o.Offset
			want += o.Offset
		}
	})
	rc, err := kgo.NewClient(kgo.SeedBrokers(cl.OptValue(kgo.SeedBrokers).([]string)...),
		kgo.ConsumeTopics(topics...), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	var got int64
	for got < want {
		fs := rc.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return got, err
		}
		if err := fs.Err0(); err != nil {
			return got, err
		}
		got += int64(fs.NumRecords())
	}
	return got, nil
}
