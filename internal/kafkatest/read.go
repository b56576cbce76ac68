package kafkatest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ReadTopic reads every record of topic, from its start to its end offsets of the moment it
// is called, with a plain franz-go consumer (read_uncommitted: records of aborted
// transactions too); a topic without records, or that does not exist, gives none. The test fails if they cannot all
// be read within a minute.
func ReadTopic(t testing.TB, brokers []string, topic string) []*kgo.Record {
	t.Helper()
	return ReadToEnd(t, brokers, topic, kgo.ReadUncommitted())
}

// ReadToEnd reads the records of topic from its start to the end offsets of the moment it
// is called, at the isolation level given: read_committed leaves out the records of
// aborted and open transactions. Transaction markers take offsets but are no records: the
// read keeps them (KeepControlRecords) to know when a partition is done, and returns
// none of them. A topic that does not exist has no records. The test fails if the ends cannot be reached within a minute (an open
// transaction below an end holds a read_committed read there).
func ReadToEnd(t testing.TB, brokers []string, topic string, level kgo.IsolationLevel) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	adm, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	ends, err := kadm.NewClient(adm).ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if errors.Is(err, kerr.UnknownTopicOrPartition) {
		return nil // never created: no records
	}
	if err != nil {
		t.Fatalf("kafkatest: end offsets of %s: %v", topic, err)
	}
	left := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			left[o.Partition] = o.Offset
		}
	})
	if len(left) == 0 {
		return nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(level), kgo.KeepControlRecords())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for len(left) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("kafkatest: read %s: %d records, partitions not read to their end (partition: end) %v: %v", topic, len(recs), left, err)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Logf("kafkatest: fetch %s: %v", topic, err) })
		fs.EachRecord(func(r *kgo.Record) {
			end, ok := left[r.Partition]
			if !ok || r.Offset >= end {
				return
			}
			if !r.Attrs.IsControl() {
				recs = append(recs, r)
			}
			if r.Offset >= end-1 {
				delete(left, r.Partition)
			}
		})
	}
	return recs
}

// Header returns the value of r's header key, "" if it has none.
func Header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}
