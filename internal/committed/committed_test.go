package committed_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/internal/committed"
	"github.com/socialbridge/bridge/internal/kafkatest"
)

func client(t *testing.T, brokers []string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// TestReadSettlesTransactions: a partition holds a plain record, a committed transaction,
// an aborted one, and, at its end, a transaction another producer has left open, then a
// plain record after it. The read returns the plain and committed records, in the order
// they were committed, comes back without waiting for the open transaction (a
// read-committed fetch would stop before it), and resumes at the open one's first record.
// A topic that does not exist has nothing to read.
func TestReadSettlesTransactions(t *testing.T) {
	brokers, prefix := kafkatest.Brokers(t), kafkatest.Prefix(t)
	topic := prefix + "settle"
	adm := kadm.NewClient(client(t, brokers))
	kafkatest.CreateTopic(t, adm, topic, 1)
	rec := func(v string) *kgo.Record { return &kgo.Record{Topic: topic, Value: []byte(v)} }
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	plain := client(t, brokers)
	if err := plain.ProduceSync(ctx, rec("plain-1")).FirstErr(); err != nil {
		t.Fatal(err)
	}
	kafkatest.ProduceInTransaction(ctx, t, brokers, kafkatest.Commit, rec("committed-1"), rec("committed-2"))
	kafkatest.ProduceInTransaction(ctx, t, brokers, kafkatest.Abort, rec("aborted"))
	openRec := rec("open")
	open := kafkatest.ProduceInTransaction(ctx, t, brokers, kafkatest.LeaveOpen, openRec)
	defer func() { _ = open.EndTransaction(context.Background(), kgo.TryAbort) }()
	if err := plain.ProduceSync(ctx, rec("plain-2")).FirstErr(); err != nil {
		t.Fatal(err)
	}

	rgs, err := committed.Ranges(ctx, adm, time.Time{}, topic, prefix+"missing")
	if err != nil || len(rgs) != 1 {
		t.Fatalf("Ranges: %v, %v; want the one partition of %s", rgs, err, topic)
	}
	var got []string
	var read, total int64
	resume, err := committed.Read(ctx, []kgo.Opt{kgo.SeedBrokers(brokers...)}, rgs,
		func(r *kgo.Record) { got = append(got, string(r.Value)) },
		func(r, t int64) { read, total = r, t })
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"plain-1", "committed-1", "committed-2", "plain-2"}; !slices.Equal(got, want) {
		t.Errorf("read %q, want %q", got, want)
	}
	if at := resume[committed.Partition{Topic: topic, Index: 0}]; at != openRec.Offset {
		t.Errorf("resumes at %d, want %d (the open transaction's first record)", at, openRec.Offset)
	}
	end := rgs[committed.Partition{Topic: topic, Index: 0}].End
	if read != end || total != end {
		t.Errorf("progress %d of %d, want %d of %d: every offset, control records too", read, total, end, end)
	}
}

// TestRangesSince: a range starts at the first record at or after since.
func TestRangesSince(t *testing.T) {
	brokers, prefix := kafkatest.Brokers(t), kafkatest.Prefix(t)
	topic := prefix + "since"
	adm := kadm.NewClient(client(t, brokers))
	kafkatest.CreateTopic(t, adm, topic, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	now := time.Now()
	var rs []*kgo.Record
	for _, age := range []time.Duration{3 * time.Hour, 2 * time.Hour, time.Hour} {
		rs = append(rs, &kgo.Record{Topic: topic, Timestamp: now.Add(-age)})
	}
	if err := client(t, brokers).ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	rgs, err := committed.Ranges(ctx, adm, now.Add(-150*time.Minute), topic)
	if got := rgs[committed.Partition{Topic: topic, Index: 0}]; err != nil || got != (committed.Range{Start: 1, End: 3}) {
		t.Errorf("Ranges since 2h30 ago: %+v, %v; want [1, 3)", got, err)
	}
}
