package consumers_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/consumers"
)

// TestHoldsRewindToTheHeldRecord: against a Kafka (kfake here; the retries group's tests
// hold against the real broker), a held partition is fetched no more until its hold is
// released, and then again from the held record: the records after it that were polled
// already come again.
func TestHoldsRewindToTheHeldRecord(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "t"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics("t"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DefaultProduceTopic("t"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, v := range []string{"a", "b", "c"} {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	poll := func(n int) []*kgo.Record {
		var got []*kgo.Record
		for len(got) < n {
			fs := cl.PollFetches(ctx)
			if err := fs.Err0(); err != nil {
				t.Fatalf("poll (%d of %d records): %v", len(got), n, err)
			}
			got = append(got, fs.Records()...)
		}
		return got
	}
	first := poll(3)
	var h consumers.Holds
	now := time.Now()
	h.Hold(cl, first[1], now.Add(time.Hour))
	if !h.Held("t", 0) {
		t.Fatal("t/0 is not held")
	}
	if next, ok := h.Next(); !ok || !next.Equal(now.Add(time.Hour)) {
		t.Errorf("Next = %v, %v; want the hold's end", next, ok)
	}
	h.Release(cl, now) // not due yet
	if !h.Held("t", 0) || len(cl.PauseFetchPartitions(nil)["t"]) != 1 {
		t.Fatal("a hold not due was released")
	}
	h.Release(cl, now.Add(time.Hour))
	if h.Held("t", 0) {
		t.Fatal("a due hold was kept")
	}
	again := poll(2)
	if string(again[0].Value) != "b" || again[0].Offset != 1 || string(again[1].Value) != "c" {
		t.Errorf("after the release: %q at %d, %q; want b at 1, then c", again[0].Value, again[0].Offset, again[1].Value)
	}
}
