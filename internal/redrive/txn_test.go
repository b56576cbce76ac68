package redrive

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/socialbridge/bridge/internal/kafkatest"
	"github.com/socialbridge/bridge/internal/testkit"
)

// TestRedriveFencedBeforeItsCommit: run A has produced its batch and is about to commit
// when another run starts taking the transactional id. With Kafka's transactions v2, the
// broker first fences A's open transaction (aborting it, under the next epoch) and only
// then gives the newcomer its id; a commit of A between the two is refused with
// INVALID_TXN_STATE rather than PRODUCER_FENCED. A must still report ErrTakenOver, having
// moved nothing, and a later run must move every record once.
func TestRedriveFencedBeforeItsCommit(t *testing.T) {
	brokers, prefix := kafkatest.Brokers(t), kafkatest.Prefix(t)
	ids := []string{"evt_1", "evt_2", "evt_3"}
	seedDLQ(t, brokers, prefix, ids, []string{"", "", ""})
	produced, release := make(chan struct{}), make(chan struct{})
	testHookBeforeCommit = func() {
		close(produced)
		<-release
	}
	t.Cleanup(func() { testHookBeforeCommit = nil })
	type outcome struct {
		res Result
		err error
	}
	aDone := make(chan outcome, 1)
	go func() {
		res, _, err := newTestDLQ(t, brokers, prefix).Redrive(context.Background(), Filter{}, false)
		aDone <- outcome{res, err}
	}()
	<-produced
	fenceOnce(t, brokers, RedriveTxnID(prefix))
	testHookBeforeCommit = nil
	close(release)
	a := <-aDone
	if !errors.Is(a.err, ErrTakenOver) || a.res.Redriven != 0 {
		t.Fatalf("run A, fenced before its commit: %+v, %v; want ErrTakenOver and nothing redriven", a.res, a.err)
	}
	if res, _, err := newTestDLQ(t, brokers, prefix).Redrive(context.Background(), Filter{}, false); err != nil || res.Redriven != len(ids) {
		t.Fatalf("the next run: %+v, %v; want all %d redriven", res, err, len(ids))
	}
	assertOnce(t, brokers, prefix, len(ids))
}

// fenceOnce asks for txnID's producer id once, as a newcomer's first InitProducerId does,
// without retrying it: the broker aborts the transaction open under the id and answers
// CONCURRENT_TRANSACTIONS. fenceOnce returns once the abort is complete.
func fenceOnce(t *testing.T, brokers []string, txnID string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl := client(t, brokers)
	req := kmsg.NewPtrInitProducerIDRequest()
	req.TransactionalID = &txnID
	req.TransactionTimeoutMillis = int32(txnTimeout.Milliseconds())
	req.ProducerID, req.ProducerEpoch = -1, -1
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	switch err := kerr.ErrorForCode(resp.ErrorCode); {
	case err == nil:
		return // kfake fences and hands out the id in one step: A meets PRODUCER_FENCED
	case !errors.Is(err, kerr.ConcurrentTransactions):
		t.Fatalf("InitProducerId: %v", err)
	}
	adm := kadm.NewClient(cl)
	testkit.Eventually(t, 30*time.Second, "the fenced transaction aborted", func() bool {
		ds, err := adm.DescribeTransactions(ctx, txnID)
		d, ok := ds[txnID]
		return err == nil && ok && d.Err == nil && d.State == "CompleteAbort"
	})
}
