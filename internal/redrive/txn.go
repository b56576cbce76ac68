package redrive

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// txnTimeout bounds one batch's transaction. The broker aborts a transaction left open
// longer (one of a process killed midway, when no run follows to abort it at once), and
// until then read-committed consumers of the partitions it wrote wait: so it is short, and
// a batch is small enough to produce well within it.
const txnTimeout = 30 * time.Second

// ErrTakenOver is the error of a run whose transactional id another run has since taken:
// nothing this run had not committed yet is kept.
var ErrTakenOver = errors.New("another run took over (it started after this one, with the same transactional id): what this run had not committed was aborted; run it again to see what is left")

// hold returns a transactional producer with the fixed transactional id txnID, initialized:
// the broker has fenced every other producer with that id, and ended the transaction one
// of them left open (aborted it, or finished committing it), before hold returns. So what
// the previous holder committed is readable now, and what it left open never will be;
// and a producer that held the id before can commit nothing more.
func hold(ctx context.Context, opts []kgo.Opt, txnID string) (*kgo.Client, error) {
	cl, err := kgo.NewClient(append(slices.Clip(opts),
		kgo.TransactionalID(txnID),
		kgo.TransactionTimeout(txnTimeout),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(0),
	)...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	if _, _, err := cl.ProducerID(ctx); err != nil {
		cl.Close()
		return nil, fmt.Errorf("taking the transactional id %s: %w", txnID, takenOver(err))
	}
	return cl, nil
}

// settled waits until no transaction of txnID is between its end and the markers that end
// it on the partitions it wrote. The coordinator answers a commit once it has logged it,
// and writes the markers a moment later; a read before them sees the transaction's records
// without their commit, as if still open, and leaves them out. A run's own read needs no
// wait (hold's taking the id waits for the same), but a list or a dry run right after a
// run would say the run's work is still to do. An id never used, or that this client may
// not describe, is not waited for: the read goes on as before.
func settled(ctx context.Context, adm *kadm.Client, txnID string) error {
	for {
		ds, err := adm.DescribeTransactions(ctx, txnID)
		d, ok := ds[txnID]
		if err != nil || !ok || d.Err != nil || !ending(d.State) {
			return ctx.Err()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// ending reports whether a transaction in state is ended but its markers not all written.
func ending(state string) bool {
	return state == "PrepareCommit" || state == "PrepareAbort" || state == "PrepareEpochFence"
}

// transact runs produce in one transaction of cl and commits it: all its records, or none.
// testHookBeforeCommit, when set (by tests), runs between the two.
func transact(ctx context.Context, cl *kgo.Client, produce func() error) error {
	if err := cl.BeginTransaction(); err != nil {
		return takenOver(err)
	}
	err := produce()
	if err == nil && testHookBeforeCommit != nil {
		testHookBeforeCommit()
	}
	if err == nil {
		// Not cut short by the caller's cancel (Ctrl-C): a commit whose answer is lost has an
		// unknown outcome, which only the next run would settle.
		err = cl.EndTransaction(context.WithoutCancel(ctx), kgo.TryCommit)
	}
	if err != nil {
		// The documented follow-up of any failed commit; a no-op when nothing is open.
		_ = cl.EndTransaction(context.WithoutCancel(ctx), kgo.TryAbort)
		return takenOver(err)
	}
	return nil
}

// testHookBeforeCommit, when set (by tests only), runs in each transaction after its records
// are produced and before it commits.
var testHookBeforeCommit func()

// takenOver turns the broker's answers to a fenced producer into ErrTakenOver. With
// Kafka's transactions v2 (KIP-890, on by default since Kafka 4.0) a newcomer's taking the
// id first aborts the open transaction under the next epoch, and only then bumps the epoch
// again for the newcomer: a commit arriving between the two looks to the broker like a
// retry of that abort, and is refused with INVALID_TXN_STATE. Every answer here refuses
// the request: nothing of the open transaction is committed.
func takenOver(err error) error {
	if errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch) || errors.Is(err, kerr.InvalidTxnState) {
		return fmt.Errorf("%w (%v)", ErrTakenOver, err)
	}
	return err
}

// produceAll produces rs in the open transaction and waits for every acknowledgement.
func produceAll(ctx context.Context, cl *kgo.Client, rs []*kgo.Record) error {
	if len(rs) == 0 {
		return nil
	}
	return cl.ProduceSync(ctx, rs...).FirstErr()
}
