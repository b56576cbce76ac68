package main

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/bridge/dedup"
	"github.com/socialbridge/bridge/bridge/producer"
	"github.com/socialbridge/bridge/config"
)

type result struct {
	records, ids       int
	plainPerSec        float64
	seconds, idsPerSec float64
	heapMiB, rssMiB    float64
}

func (r *result) row() string {
	return fmt.Sprintf("| %d | %d | %.0f | %.1f | %.0f | %.0f | %.0f |",
		r.records, r.ids, r.plainPerSec, r.seconds, r.idsPerSec, r.heapMiB, r.rssMiB)
}

// rebuild times a plain read of the records (the floor any rebuild from the topics meets),
// then dedup.Rebuild into a Store with room for all of them.
func rebuild(ctx context.Context, cl *kgo.Client, k config.Kafka, n int) (*result, error) {
	topics := producer.Topics(k.TopicPrefix)
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
	s := dedup.New(24*time.Hour, max(n, config.Default().Dedup.MaxIDs))
	start = time.Now()
	ids, err := dedup.Rebuild(ctx, cl, topics, time.Now(), s, nil)
	if err != nil {
		return nil, err
	}
	res.seconds = time.Since(start).Seconds()
	res.ids, res.idsPerSec = ids, float64(ids)/res.seconds
	res.heapMiB, res.rssMiB = heapMiB()-base, peakRSSMiB()
	logf("rebuild of %d ids: %.1f s, %.0f ids/s", ids, res.seconds, res.idsPerSec)
	if s.Len() != n {
		return nil, fmt.Errorf("rebuilt %d ids of %d", s.Len(), n)
	}
	return res, nil
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
