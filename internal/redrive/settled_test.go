package redrive

import (
	"context"
	"fmt"
	"testing"

	"github.com/socialbridge/bridge/internal/kafkatest"
)

// TestReadRightAfterARunSeesIt: a read started the moment a replay or redrive returned (a
// list, a dry run) sees what that run did as done. The run's commit has been accepted by
// the transaction coordinator, which writes the markers ending the transaction on each
// partition a moment later (right after a run, the coordinator said PrepareCommit in 13 of
// 20 tries here); a read before them sees the run's marks without their commit, as if
// still open, and says the work is still to do. Rounds of a run then a read on a client
// dialled beforehand, each over a new record: the read must see it marked.
func TestReadRightAfterARunSeesIt(t *testing.T) {
	brokers, prefix := kafkatest.Brokers(t), kafkatest.Prefix(t)
	q, d := newTestQuarantine(t, brokers, prefix), newTestDLQ(t, brokers, prefix)
	c, err := dial(testConfig(t, brokers, prefix).Kafka)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	for i := range 20 {
		id := fmt.Sprintf("evt_round%02d", i)
		produceAsIngress(t, brokers, quarantined(prefix, int32(i%2), "codiv", "codivupload", codivBody("post.published", id)))
		seedDLQ(t, brokers, prefix, []string{id}, []string{"timeout"})
		f := Filter{IDs: []string{id}}
		if res, _, err := q.Replay(ctx, f, false); err != nil || res.Replayed != 1 {
			t.Fatalf("round %d: replay %+v, %v", i, res, err)
		}
		ds, _, err := q.read(ctx, c, nil)
		if err != nil || len(ds) != i+1 {
			t.Fatalf("round %d: read right after the replay: %d deliveries, %v; want %d, the new one replayed", i, len(ds), err, i+1)
		}
		for _, dv := range ds {
			if !dv.Replayed {
				t.Fatalf("round %d: read right after the replay: a delivery not marked replayed (partition %d offset %d)", i, dv.Partition, dv.Offset)
			}
		}
		if res, _, err := d.Redrive(ctx, f, false); err != nil || res.Redriven != 1 {
			t.Fatalf("round %d: redrive %+v, %v", i, res, err)
		}
		es, _, err := d.read(ctx, c, nil)
		if err != nil || len(es) != i+1 {
			t.Fatalf("round %d: read right after the redrive: %d entries, %v; want %d", i, len(es), err, i+1)
		}
		for _, e := range es {
			if !e.Redriven {
				t.Fatalf("round %d: read right after the redrive: %s not marked redriven", i, e.EventID)
			}
		}
	}
}
