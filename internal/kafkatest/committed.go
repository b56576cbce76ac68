package kafkatest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/socialbridge/bridge/internal/testkit"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ReadCommitted returns the committed records of topic, read from the start as a downstream
// reader does (read-committed: a transaction's records once it commits, never an aborted
// one's), until at least min have come and no more came for quiet, so that a duplicate
// arriving late is seen too, or until timeout. Where a positive signal says every record that
// may come has come (WaitCommitted), give quiet 0.
func ReadCommitted(t testing.TB, brokers []string, topic string, min int, quiet, timeout time.Duration) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	deadline := time.Now().Add(timeout)
	var out []*kgo.Record
	last := time.Now()
	for time.Now().Before(deadline) && (len(out) < min || time.Since(last) < quiet) {
		ctx, cancel := context.WithTimeout(context.Background(), 250*time.Millisecond)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r); last = time.Now() })
	}
	return out
}

// WaitCommitted waits until group's committed offset of topic's partition is at least at:
// the positive signal that the group has finished with every record before it, and so that
// whatever it would have written for them is committed by now.
func WaitCommitted(t testing.TB, brokers []string, group, topic string, partition int32, at int64) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	testkit.Eventually(t, 90*time.Second, fmt.Sprintf("%s's committed offset of %s/%d reaching %d", group, topic, partition, at), func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		offs, err := adm.FetchOffsets(ctx, group)
		if err != nil {
			return false
		}
		o, ok := offs.Lookup(topic, partition)
		return ok && o.At >= at
	})
}
