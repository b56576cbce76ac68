package consumers_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/consumers"
	"github.com/socialbridge/bridge/internal/topics"
)

// forwarder moves every record it reads to its topic "out", and tells of each batch's end.
type forwarder struct {
	ended chan bool
}

func (f *forwarder) Handle(ctx context.Context, tx *consumers.Tx, fs kgo.Fetches) error {
	fs.EachRecord(func(r *kgo.Record) {
		tx.Produce(ctx, consumers.Forward(r, "out"))
		tx.Count(r.Topic, "moved")
	})
	return nil
}

func (f *forwarder) Ended(committed bool) { f.ended <- committed }

// TestMemberRunsAGroup runs a Member against an in-process kfake cluster (the Kafka tests of
// retries and alerts run it against the real broker): it creates the topics it is given,
// moves what it reads in transactions that commit, tells a caller of the partitions it
// gives up when it stops, and returns nil when its context ends.
func TestMemberRunsAGroup(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	k := config.Default().Kafka
	k.Brokers, k.Partitions, k.ReplicationFactor, k.TopicPrefix = c.ListenAddrs(), 1, 1, ""
	f := &forwarder{ended: make(chan bool, 100)}
	var mu sync.Mutex
	var gone []string
	reg := consumers.NewRegistry()
	m := &consumers.Member{
		Kafka: k, Group: "g", Reads: []string{"in"}, Topics: topics.Plain("in", "out"),
		Config:  config.Member{Listen: "127.0.0.1:0", TransactionTimeout: config.Duration(10 * time.Second)},
		Handler: f, Holds: &consumers.Holds{}, Metrics: consumers.NewMetrics(reg, "g"), Registry: reg,
		Log: slog.New(slog.DiscardHandler), MaxRecords: 100,
		Gone: func(_ *kgo.Client, ps map[string][]int32) {
			mu.Lock()
			defer mu.Unlock()
			for topic := range ps {
				gone = append(gone, topic)
			}
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()

	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics("out"), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	// A bound for a failure, not a measure of speed (it takes seconds): it stays under the
	// time the mutation run allows this package's tests (scripts/mutate.sh), so that a
	// mutant that stops the member fails the run instead of timing it out.
	deadline, stop := context.WithTimeout(context.Background(), time.Minute)
	defer stop()
	for { // the member creates its topics
		if deadline.Err() != nil {
			t.Fatal("the member did not create in and out")
		}
		if md, err := adm.ListTopics(context.Background(), "in", "out"); err == nil && len(md.Names()) == 2 && md.Error() == nil {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("Run returned before creating its topics: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	for i := range 3 {
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: "in", Value: []byte{byte('a' + i)}}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	var moved []string
	for len(moved) < 3 {
		fs := cl.PollFetches(deadline)
		if err := fs.Err0(); err != nil {
			t.Fatalf("reading what the member moved (%v so far): %v", moved, err)
		}
		fs.EachRecord(func(r *kgo.Record) { moved = append(moved, string(r.Value)) })
	}
	if len(moved) != 3 || moved[0] != "a" || moved[2] != "c" {
		t.Errorf("moved %v, want a b c", moved)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run after its context ended: %v", err)
	}
	offsets, err := adm.FetchOffsets(context.Background(), "g")
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := offsets.Lookup("in", 0); !ok || o.At != 3 {
		t.Errorf("committed offset of in/0: %+v, want 3", o)
	}
	mu.Lock()
	if len(gone) == 0 || gone[0] != "in" {
		t.Errorf("partitions given up at the stop: %v, want in's", gone)
	}
	mu.Unlock()
}
