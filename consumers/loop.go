package consumers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Handler handles the records of one poll inside one transaction.
type Handler interface {
	// Handle does each record's effect and produces what follows from it through tx; those
	// records and the offsets of everything polled commit together, or none of them do. A
	// record that cannot be handled yet is held (Holds.Hold) and the records after it on its
	// partition skipped. An error aborts the batch: it is polled again.
	Handle(ctx context.Context, tx *Tx, fs kgo.Fetches) error
	// Ended tells whether the batch committed. After an abort the offsets are back at the
	// last commit, and whatever the handler derived from the batch must be forgotten.
	Ended(committed bool)
}

// Session is what a Loop needs of a kgo.GroupTransactSession made with TransactOptions,
// which has each of these methods (a stand-in in the model tests).
type Session interface {
	PollRecords(ctx context.Context, maxPollRecords int) kgo.Fetches
	Begin() error
	Produce(ctx context.Context, r *kgo.Record, promise func(*kgo.Record, error))
	End(ctx context.Context, commit kgo.TransactionEndTry) (committed bool, err error)
	AllowRebalance()
}

// Clock is the time a Loop goes by: when holds end, and the pause after a failed batch.
type Clock interface {
	Now() time.Time
	// Sleep waits for d, or until ctx ends.
	Sleep(ctx context.Context, d time.Duration)
}

// Loop is a group member's poll loop on a GroupTransactSession made with TransactOptions:
// poll, Begin, Handle, End, then let a waiting rebalance go on. A rebalance never lands
// inside a batch, so every batch commits, offsets move only with the batch's effects, and a
// crash at any point aborts the open transaction: nothing it produced is visible to
// read-committed readers, and its records are polled again.
type Loop struct {
	Session    Session
	Client     Fetcher // the session's client
	Handler    Handler
	Holds      *Holds
	MaxRecords int // per batch
	Metrics    *Metrics
	Log        *slog.Logger
	Clock      Clock // nil: the real time
	// EndTimeout bounds ending one transaction (0: endTimeout). It must outlast a
	// rebalance: franz-go holds a batch's offset commit while the group rebalances, which
	// lasts until every member has rejoined or was dropped, up to the rebalance timeout.
	EndTimeout time.Duration
}

// realClock is the Clock of the wall.
type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) Sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func (l *Loop) clock() Clock {
	if l.Clock == nil {
		return realClock{}
	}
	return l.Clock
}

// endTimeout bounds ending one transaction, rebalances apart (see Loop.EndTimeout).
const endTimeout = 30 * time.Second

func (l *Loop) endTimeout() time.Duration {
	if l.EndTimeout > 0 {
		return l.EndTimeout
	}
	return endTimeout
}

// Run polls until ctx ends. The batch in hand when it ends is finished (its effects are not
// cancelled) and committed; then Run returns, and the caller closes the session, which
// leaves the group. An error means the session can no longer commit.
func (l *Loop) Run(ctx context.Context) error {
	work := context.WithoutCancel(ctx)
	for ctx.Err() == nil {
		l.Holds.Release(l.Client, l.clock().Now())
		fs := l.poll(ctx)
		if fs.IsClientClosed() {
			return nil
		}
		l.logErrors(fs)
		if !fs.Empty() {
			if err := l.batch(work, fs); err != nil {
				l.Session.AllowRebalance()
				return err
			}
		}
		l.Session.AllowRebalance()
	}
	return nil
}

// poll waits for records, at most until the next hold ends.
func (l *Loop) poll(ctx context.Context) kgo.Fetches {
	if next, ok := l.Holds.Next(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, next.Sub(l.clock().Now()))
		defer cancel()
	}
	return l.Session.PollRecords(ctx, l.MaxRecords)
}

func (l *Loop) logErrors(fs kgo.Fetches) {
	for _, e := range fs.Errors() {
		if !errors.Is(e.Err, context.Canceled) && !errors.Is(e.Err, context.DeadlineExceeded) {
			l.Log.Warn("fetch", "topic", e.Topic, "partition", e.Partition, "err", e.Err)
		}
	}
}

func (l *Loop) batch(ctx context.Context, fs kgo.Fetches) error {
	if err := l.Session.Begin(); err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	tx := newTx(l.Session, l.Client)
	herr := l.Handler.Handle(ctx, tx, fs)
	if herr == nil {
		herr = tx.wait()
	}
	try := kgo.TryCommit
	if herr != nil {
		l.Log.Warn("batch aborted; it is polled again", "err", herr)
		try = kgo.TryAbort
	}
	ectx, cancel := context.WithTimeout(ctx, l.endTimeout())
	defer cancel()
	committed, err := l.Session.End(ectx, try)
	l.ended(tx, committed)
	if err != nil {
		return fmt.Errorf("end transaction: %w", err)
	}
	if herr != nil {
		l.clock().Sleep(ctx, time.Second) // the cause (Kafka, the registry) is likely still there
	}
	return nil
}

func (l *Loop) ended(tx *Tx, committed bool) {
	outcome := "aborted"
	if committed {
		outcome = "committed"
		for topic, n := range tx.moved {
			l.Metrics.Moved.WithLabelValues(topic).Add(float64(n))
		}
		for c, n := range tx.processed {
			l.Metrics.Processed.WithLabelValues(c.topic, c.outcome).Add(float64(n))
		}
		for reason, n := range tx.deadLettered {
			l.Metrics.DeadLettered.WithLabelValues(reason).Add(float64(n))
		}
	}
	l.Metrics.Transactions.WithLabelValues(outcome).Inc()
	l.Handler.Ended(committed)
}

// Tx is the open transaction of one batch.
type Tx struct {
	session      Session
	client       Fetcher
	promise      func(*kgo.Record, error) // t.produced, made once rather than per record
	wg           sync.WaitGroup
	mu           sync.Mutex
	err          error
	moved        map[string]int
	processed    map[processedKey]int
	deadLettered map[string]int // by reason
}

// processedKey is the labels of Metrics.Processed.
type processedKey struct{ topic, outcome string }

func newTx(s Session, cl Fetcher) *Tx {
	t := &Tx{session: s, client: cl, moved: map[string]int{}, processed: map[processedKey]int{}, deadLettered: map[string]int{}}
	t.promise = t.produced
	return t
}

// Client is the session's client, for Holds.
func (t *Tx) Client() Fetcher { return t.client }

// Produce adds r to the transaction. A record Kafka refuses aborts the batch.
func (t *Tx) Produce(ctx context.Context, r *kgo.Record) {
	t.wg.Add(1)
	t.session.Produce(ctx, r, t.promise)
}

func (t *Tx) produced(r *kgo.Record, err error) {
	defer t.wg.Done()
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil && t.err == nil {
		t.err = fmt.Errorf("produce to %s: %w", r.Topic, err)
	}
	if err == nil {
		t.moved[r.Topic]++
	}
}

// Count counts one record of topic handled with outcome in Metrics.Processed, if the batch
// commits: a batch polled again after an abort is counted once.
func (t *Tx) Count(topic, outcome string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.processed[processedKey{topic, outcome}]++
}

// CountDeadLettered counts one record sent to the dead-letter topic for reason in
// Metrics.DeadLettered, if the batch commits.
func (t *Tx) CountDeadLettered(reason string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.deadLettered[reason]++
}

func (t *Tx) wait() error {
	t.wg.Wait()
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.err
}
