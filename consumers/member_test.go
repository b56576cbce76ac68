package consumers_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/consumers"
	"github.com/socialbridge/bridge/internal/testkit"
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

// memberTest is a Member of group "g" forwarding topic "in" to "out" on an in-process kfake
// cluster, and a read-committed client of that cluster reading "out".
type memberTest struct {
	c   *kfake.Cluster
	m   *consumers.Member
	f   *forwarder
	cl  *kgo.Client
	adm *kadm.Client
	// deadline bounds a failure, not a measure of speed (it takes seconds): it stays under
	// the time the mutation run allows this package's tests (scripts/mutate.sh), so that a
	// mutant that stops the member fails the run instead of timing it out.
	deadline context.Context
	early    atomic.Pointer[error] // what Run returned before its context ended
}

func newMemberTest(t *testing.T, log *slog.Logger) *memberTest {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	k := config.Default().Kafka
	k.Brokers, k.Partitions, k.ReplicationFactor, k.TopicPrefix = c.ListenAddrs(), 1, 1, ""
	mt := &memberTest{c: c, f: &forwarder{ended: make(chan bool, 100)}}
	reg := consumers.NewRegistry()
	mt.m = &consumers.Member{
		Kafka: k, Group: "g", Reads: []string{"in"}, Topics: topics.Plain("in", "out"),
		Config:  config.Member{Listen: "127.0.0.1:0", TransactionTimeout: config.Duration(10 * time.Second)},
		Handler: mt.f, Holds: &consumers.Holds{}, Metrics: consumers.NewMetrics(reg, "g"), Registry: reg,
		Log: log, MaxRecords: 100,
	}
	mt.cl, err = kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics("out"), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(mt.cl.Close)
	mt.adm = kadm.NewClient(mt.cl)
	var stop context.CancelFunc
	mt.deadline, stop = context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(stop)
	return mt
}

// run starts the member until the returned stop is called, which returns what Run did.
// Reading through mt.deadline ends if Run returns before.
func (mt *memberTest) run(t *testing.T) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	var cancelRead context.CancelFunc
	mt.deadline, cancelRead = context.WithCancel(mt.deadline)
	done := make(chan error, 1)
	go func() {
		err := mt.m.Run(ctx)
		if ctx.Err() == nil {
			mt.early.Store(&err)
		}
		done <- err
		cancelRead()
	}()
	for { // the member creates its topics
		if mt.deadline.Err() != nil {
			t.Fatalf("the member did not create in and out%s", mt.returned())
		}
		if md, err := mt.adm.ListTopics(context.Background(), "in", "out"); err == nil && len(md.Names()) == 2 && md.Error() == nil {
			break
		}
		select {
		case <-mt.deadline.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
	return func() error {
		if early := mt.returned(); early != "" {
			t.Error(strings.TrimPrefix(early, "; "))
		}
		cancel()
		return <-done
	}
}

// returned says whether Run returned before its context ended, and what.
func (mt *memberTest) returned() string {
	if err := mt.early.Load(); err != nil {
		return fmt.Sprintf("; Run returned before its context ended: %v", *err)
	}
	return ""
}

// move produces values to "in" and reads as many records from "out".
func (mt *memberTest) move(t *testing.T, values ...string) []string {
	t.Helper()
	for _, v := range values {
		if err := mt.cl.ProduceSync(context.Background(), &kgo.Record{Topic: "in", Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	var moved []string
	for len(moved) < len(values) {
		fs := mt.cl.PollFetches(mt.deadline)
		if err := fs.Err0(); err != nil {
			t.Fatalf("reading what the member moved (%v so far): %v%s", moved, err, mt.returned())
		}
		fs.EachRecord(func(r *kgo.Record) { moved = append(moved, string(r.Value)) })
	}
	return moved
}

// committed is the group's committed offset of in/0.
func (mt *memberTest) committed(t *testing.T) int64 {
	t.Helper()
	offsets, err := mt.adm.FetchOffsets(context.Background(), "g")
	if err != nil {
		t.Fatal(err)
	}
	o, _ := offsets.Lookup("in", 0)
	return o.At
}

// TestMemberRunsAGroup runs a Member against an in-process kfake cluster (the Kafka tests of
// retries and alerts run it against the real broker): it creates the topics it is given,
// moves what it reads in transactions that commit, tells a caller of the partitions it
// gives up when it stops, and returns nil when its context ends.
func TestMemberRunsAGroup(t *testing.T) {
	mt := newMemberTest(t, slog.New(slog.DiscardHandler))
	var mu sync.Mutex
	var gone []string
	mt.m.Gone = func(_ *kgo.Client, ps map[string][]int32) {
		mu.Lock()
		defer mu.Unlock()
		for topic := range ps {
			gone = append(gone, topic)
		}
	}
	stop := mt.run(t)
	if moved := mt.move(t, "a", "b", "c"); strings.Join(moved, " ") != "a b c" {
		t.Errorf("moved %v, want a b c", moved)
	}
	if err := stop(); err != nil {
		t.Errorf("Run after its context ended: %v", err)
	}
	if o := mt.committed(t); o != 3 {
		t.Errorf("committed offset of in/0: %d, want 3", o)
	}
	mu.Lock()
	if len(gone) == 0 || gone[0] != "in" {
		t.Errorf("partitions given up at the stop: %v, want in's", gone)
	}
	mu.Unlock()
}

// TestMemberReplacesAFailedSession: a transaction session whose End fails (here the
// broker refuses the batch's offsets twice, an error franz-go does not retry) is closed
// and a new one joins in its place, waiting 1 s, then 2 s; Run goes on, and the records
// of the aborted batches are moved once, by the session that commits.
func TestMemberReplacesAFailedSession(t *testing.T) {
	var logs testkit.LogBuffer
	mt := newMemberTest(t, slog.New(slog.NewTextHandler(&logs, nil)))
	var refused atomic.Int32
	mt.c.ControlKey(int16(kmsg.TxnOffsetCommit), func(req kmsg.Request) (kmsg.Response, error, bool) {
		if refused.Add(1) > 2 {
			return nil, nil, false
		}
		mt.c.KeepControl()
		return refuseOffsets(req.(*kmsg.TxnOffsetCommitRequest)), nil, true
	})
	stop := mt.run(t)
	if moved := mt.move(t, "a", "b", "c"); strings.Join(moved, " ") != "a b c" {
		t.Errorf("moved %v, want a b c", moved)
	}
	if err := stop(); err != nil {
		t.Errorf("Run after its context ended: %v", err)
	}
	if o := mt.committed(t); o != 3 {
		t.Errorf("committed offset of in/0: %d, want 3", o)
	}
	failed := strings.Count(logs.String(), "the transaction session failed")
	if failed != 2 || !strings.Contains(logs.String(), "in=1s") || !strings.Contains(logs.String(), "in=2s") {
		t.Errorf("want two failed sessions, waiting 1s then 2s; the log:\n%s", logs.String())
	}
	if got := testutil.ToFloat64(mt.m.Metrics.Moved.WithLabelValues("out")); got != 3 {
		t.Errorf("records moved in committed transactions: %g, want 3", got)
	}
	if ended := <-mt.f.ended; ended {
		t.Error("the first batch committed, though its offsets were refused")
	}
}

// refuseOffsets answers req with OFFSET_METADATA_TOO_LARGE for each partition: an answer
// franz-go neither retries nor aborts on, so End returns it.
func refuseOffsets(req *kmsg.TxnOffsetCommitRequest) *kmsg.TxnOffsetCommitResponse {
	resp := req.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
	for _, t := range req.Topics {
		rt := kmsg.NewTxnOffsetCommitResponseTopic()
		rt.Topic, rt.TopicID = t.Topic, t.TopicID
		for _, p := range t.Partitions {
			rp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p.Partition, kerr.OffsetMetadataTooLarge.Code
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}
