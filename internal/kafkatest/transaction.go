package kafkatest

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Transaction says how ProduceInTransaction ends its transaction: commit it, abort it, or
// leave it open.
type Transaction int

const (
	Commit Transaction = iota
	Abort
	LeaveOpen
)

var txnSeq atomic.Int64

// ProduceInTransaction writes rs, each to the partition it names, in one transaction of a
// producer of its own (a transactional id no other test uses), and then ends it as end
// says. It returns the producer, closed when the test ends: a transaction left open stays
// open until the producer aborts it or its one-minute timeout passes.
func ProduceInTransaction(ctx context.Context, t testing.TB, brokers []string, end Transaction, rs ...*kgo.Record) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.TransactionalID(fmt.Sprintf("test-txn-%d-%d", time.Now().UnixNano(), txnSeq.Add(1))), kgo.TransactionTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatalf("produce in a transaction: %v", err)
	}
	if end != LeaveOpen {
		if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(end == Commit)); err != nil {
			t.Fatalf("end the transaction: %v", err)
		}
	}
	return cl
}
