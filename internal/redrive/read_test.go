package redrive

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/internal/kafkatest"
)

// TestReadCommittedSettlesTransactions: a partition holds a plain record, a committed
// transaction, an aborted one, and, at its end, a transaction another producer has left
// open. The read returns the plain and committed records only, comes back without waiting
// for the open transaction (a read-committed fetch would stop before it), and resumes at
// its first record.
func TestReadCommittedSettlesTransactions(t *testing.T) {
	brokers, prefix := kafkatest.Brokers(t), kafkatest.Prefix(t)
	topic := prefix + "settle"
	createTopics(t, brokers, topic)
	rec := func(v string) *kgo.Record { return &kgo.Record{Topic: topic, Partition: 0, Value: []byte(v)} }
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	plain := client(t, brokers, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := plain.ProduceSync(ctx, rec("plain")).FirstErr(); err != nil {
		t.Fatal(err)
	}
	produceTxn(t, brokers, true, rec("committed-1"), rec("committed-2"))
	produceTxn(t, brokers, false, rec("aborted"))
	open := client(t, brokers, kgo.TransactionalID(prefix+"open"), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.TransactionTimeout(time.Minute))
	if err := open.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	res := open.ProduceSync(ctx, rec("open"))
	if err := res.FirstErr(); err != nil {
		t.Fatal(err)
	}
	openAt := res[0].Record.Offset

	adm := kadm.NewClient(client(t, brokers))
	ss, err := spans(ctx, adm, time.Time{}, topic, prefix+"missing")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	resume, err := readCommitted(ctx, []kgo.Opt{kgo.SeedBrokers(brokers...)}, ss, func(r *kgo.Record) {
		if !r.Attrs.IsControl() {
			got = append(got, string(r.Value))
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"plain", "committed-1", "committed-2"}; !slices.Equal(got, want) {
		t.Errorf("read %q, want %q", got, want)
	}
	if at := resume[tp{topic, 0}]; at != openAt {
		t.Errorf("resumes at %d, want %d (the open transaction's first record)", at, openAt)
	}
	if err := open.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.Fatal(err)
	}
}
