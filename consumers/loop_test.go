package consumers_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/consumers"
	"github.com/socialbridge/bridge/consumers/internal/memkafka"
)

// endSpy is a memkafka session that keeps the deadline of each End's context and the time
// End was called.
type endSpy struct {
	*memkafka.Session
	mu   sync.Mutex
	ends []endCall
}

type endCall struct {
	deadline, at time.Time
	bounded      bool
}

func (s *endSpy) End(ctx context.Context, try kgo.TransactionEndTry) (bool, error) {
	at := time.Now()
	deadline, bounded := ctx.Deadline()
	s.mu.Lock()
	s.ends = append(s.ends, endCall{deadline, at, bounded})
	s.mu.Unlock()
	return s.Session.End(ctx, try)
}

func (s *endSpy) calls() []endCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.ends)
}

// sleepSpy is the real time, except that Sleep returns at once, keeping what it was asked.
type sleepSpy struct {
	mu    sync.Mutex
	slept []time.Duration
}

func (c *sleepSpy) Now() time.Time { return time.Now() }

func (c *sleepSpy) Sleep(_ context.Context, d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.slept = append(c.slept, d)
}

func (c *sleepSpy) calls() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.slept)
}

// failing forwards what it reads to "out", except that it fails the batches whose number
// (from 1) is in fail.
type failing struct {
	n    int
	fail map[int]bool
}

func (h *failing) Handle(ctx context.Context, tx *consumers.Tx, fs kgo.Fetches) error {
	h.n++
	if h.fail[h.n] {
		return errors.New("not now")
	}
	fs.EachRecord(func(r *kgo.Record) { tx.Produce(ctx, consumers.Forward(r, "out")) })
	return nil
}

func (h *failing) Ended(bool) {}

// loopTest is a Loop on a memkafka session owning in/0, where a record is waiting.
type loopTest struct {
	c     *memkafka.Cluster
	s     *endSpy
	clock *sleepSpy
	loop  *consumers.Loop
	done  chan struct{}
}

func newLoopTest(h consumers.Handler, endTimeout time.Duration) *loopTest {
	c := memkafka.NewCluster(time.Now)
	c.AddTopic("in", 1, true)
	c.AddTopic("out", 1, false)
	lt := &loopTest{c: c, s: &endSpy{Session: c.NewSession()}, clock: &sleepSpy{}, done: make(chan struct{})}
	lt.s.Assign(memkafka.TP{Topic: "in"})
	c.Append(&kgo.Record{Topic: "in", Value: []byte("a")})
	lt.loop = &consumers.Loop{Session: lt.s, Client: lt.s.Session, Handler: h, Holds: &consumers.Holds{},
		MaxRecords: 10, Metrics: consumers.NewMetrics(consumers.NewRegistry(), "g"),
		Log: slog.New(slog.DiscardHandler), Clock: lt.clock, EndTimeout: endTimeout}
	return lt
}

// run starts the Loop; the returned stop ends it, as a closed session does.
func (lt *loopTest) run(t *testing.T) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		defer close(lt.done)
		if err := lt.loop.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	return func() {
		cancel()
		lt.s.Stop()
		<-lt.done
	}
}

// step lets the Loop handle one batch and waits until it ended.
func (lt *loopTest) step() { lt.s.Step(memkafka.Turn{}, lt.done) }

// TestTransactionEndIsBounded: ending a batch's transaction is bounded by the Loop's
// EndTimeout, 30 s when 0. The bound is read from End's context: its deadline lies the
// timeout after a moment between the batch's start and End's call.
func TestTransactionEndIsBounded(t *testing.T) {
	for _, c := range []struct{ endTimeout, want time.Duration }{{0, 30 * time.Second}, {45 * time.Second, 45 * time.Second}} {
		lt := newLoopTest(&failing{}, c.endTimeout)
		stop := lt.run(t)
		before := time.Now()
		lt.step()
		stop()
		ends := lt.s.calls()
		if len(ends) != 1 {
			t.Fatalf("EndTimeout %s: %d transactions ended, want 1", c.endTimeout, len(ends))
		}
		e := ends[0]
		if !e.bounded || e.deadline.Sub(before) < c.want || e.deadline.Sub(e.at) > c.want {
			t.Errorf("EndTimeout %s: End's deadline %s after the batch began (bounded: %v), want %s",
				c.endTimeout, e.deadline.Sub(before), e.bounded, c.want)
		}
		if got := lt.c.Committed(memkafka.TP{Topic: "in"}); got != 1 {
			t.Errorf("EndTimeout %s: committed offset %d, want 1", c.endTimeout, got)
		}
	}
}

// TestTransactionAbortPausesTheLoop: after a batch the handler failed, which is aborted,
// the Loop waits 1 s before it polls again (the cause is likely still there); after a
// batch that commits, it polls again at once.
func TestTransactionAbortPausesTheLoop(t *testing.T) {
	lt := newLoopTest(&failing{fail: map[int]bool{1: true}}, 0)
	stop := lt.run(t)
	defer stop()
	lt.step()
	if got := lt.clock.calls(); !slices.Equal(got, []time.Duration{time.Second}) {
		t.Errorf("after an aborted batch: slept %v, want [1s]", got)
	}
	lt.step()
	if got := lt.c.Committed(memkafka.TP{Topic: "in"}); got != 1 {
		t.Fatalf("the batch polled again: committed offset %d, want 1", got)
	}
	if got := lt.clock.calls(); !slices.Equal(got, []time.Duration{time.Second}) {
		t.Errorf("after a committed batch: slept %v, want only the 1s after the abort", got)
	}
}
