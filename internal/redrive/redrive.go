package redrive

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/consumers"
	"github.com/socialbridge/bridge/consumers/retries"
	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/internal/topics"
)

// Filter chooses records. A record matches when it has one of IDs (any, when empty), when
// Error is empty or equal, ignoring case, to its error code, and when Since is zero or the
// record is younger than Since.
type Filter struct {
	IDs   []string
	Error string
	Since time.Duration
}

func (f Filter) match(e *Entry, now time.Time) bool {
	switch {
	case len(f.IDs) > 0 && !slices.Contains(f.IDs, e.EventID):
		return false
	case f.Error != "" && (e.Error == nil || !strings.EqualFold(*e.Error, f.Error)):
		return false
	case f.Since > 0 && e.DeadLetteredAt.Before(now.Add(-f.Since)):
		return false
	}
	return true
}

// Result is what a redrive did, as `bridge dlq redrive` prints it: the records it moved,
// and the chosen records it left because they were redriven before.
type Result struct {
	Redriven int `json:"redriven"`
	Skipped  int `json:"skipped"`
}

// Step is what a redrive does, or would do, with one chosen record: "redrive" or "skip".
type Step struct {
	EventID      string `json:"event_id"`
	DLQPartition int32  `json:"dlq_partition"`
	DLQOffset    int64  `json:"dlq_offset"`
	Action       string `json:"action"`
	Reason       string `json:"reason,omitempty"`
}

// Redrive moves each record f matches that was not redriven before to the first retry
// topic, due at once, in transactions that also mark it redriven, and returns what it did
// with each chosen record. With dryRun it only reads and says what it would do.
//
// Each record is redriven once, whatever runs at the same time or was killed before: a run
// first takes the transactional id RedriveTxnID, which fences every earlier run and ends
// the transaction one left open; only then does it read the marks, which are thus
// complete, and an earlier run that read them before can no longer commit. A dry run takes
// nothing, so it disturbs no run in progress.
//
// IDs in f that no record of the topic has are an error, before anything is moved.
func (d *DLQ) Redrive(ctx context.Context, f Filter, dryRun bool) (Result, []Step, error) {
	c, err := dial(d.k)
	if err != nil {
		return Result{}, nil, err
	}
	defer c.Close()
	var tx *kgo.Client
	if !dryRun {
		if tx, err = d.take(ctx, c); err != nil {
			return Result{}, nil, err
		}
		defer tx.Close()
	}
	now := d.now()
	es, id, err := d.read(ctx, c, func(e *Entry) bool { return !dryRun && !e.Redriven && f.match(e, now) })
	if err != nil {
		return Result{}, nil, err
	}
	if testHookAfterRead != nil {
		testHookAfterRead()
	}
	chosen, steps, res, err := d.choose(es, f, now)
	if err != nil || dryRun {
		return res, steps, err
	}
	err = d.move(ctx, tx, id, chosen, &res)
	return res, steps, err
}

// testHookAfterRead, when set (by tests only), runs after a redrive or replay has read what
// it will do, before it does any of it.
var testHookAfterRead func()

// take makes sure the topics a redrive writes exist, and takes the transactional id.
func (d *DLQ) take(ctx context.Context, c *cluster) (*kgo.Client, error) {
	if err := c.ensure(ctx, topics.Topic{Name: event.RetryTopic(d.prefix, 1)},
		topics.Topic{Name: RedrivenTopic(d.prefix), Compact: true}); err != nil {
		return nil, err
	}
	return hold(ctx, c.opts, RedriveTxnID(d.prefix))
}

// choose returns the records f matches that were not redriven, and the steps for all it
// matches.
func (d *DLQ) choose(es []Entry, f Filter, now time.Time) ([]*Entry, []Step, Result, error) {
	if err := missing(es, f.IDs, d.Topic()); err != nil {
		return nil, nil, Result{}, err
	}
	var chosen []*Entry
	var steps []Step
	var res Result
	for i := range es {
		e := &es[i]
		if !f.match(e, now) {
			continue
		}
		s := Step{EventID: e.EventID, DLQPartition: e.DLQPartition, DLQOffset: e.DLQOffset, Action: "redrive"}
		if e.Redriven {
			s.Action, s.Reason = "skip", "redriven before"
			res.Skipped++
		} else {
			chosen = append(chosen, e)
		}
		steps = append(steps, s)
	}
	return chosen, steps, res, nil
}

// missing names the ids that no entry has.
func missing(es []Entry, ids []string, topic string) error {
	var gone []string
	for _, id := range ids {
		if !slices.ContainsFunc(es, func(e Entry) bool { return e.EventID == id }) {
			gone = append(gone, strconv.Quote(id))
		}
	}
	if len(gone) > 0 {
		return fmt.Errorf("no record of event id %s in %s: nothing was redriven", strings.Join(gone, ", "), topic)
	}
	return nil
}

// move redrives es in transactions of d.batch records, counting each committed one in res.
func (d *DLQ) move(ctx context.Context, tx *kgo.Client, id kadm.TopicID, es []*Entry, res *Result) error {
	for batch := range slices.Chunk(es, d.batch) {
		if err := transact(ctx, tx, func() error { return d.moveBatch(ctx, tx, id, batch) }); err != nil {
			return fmt.Errorf("redrive: %w", err)
		}
		res.Redriven += len(batch)
		d.log.Info("redriven", "records", len(batch), "to", event.RetryTopic(d.prefix, 1))
	}
	return nil
}

// moveBatch produces, in the open transaction, each record's move and then its mark, which
// says where the move landed.
func (d *DLQ) moveBatch(ctx context.Context, tx *kgo.Client, id kadm.TopicID, es []*Entry) error {
	now := d.now()
	moves := make([]*kgo.Record, len(es))
	for i, e := range es {
		moves[i] = consumers.Forward(e.record, event.RetryTopic(d.prefix, 1),
			kgo.RecordHeader{Key: retries.HeaderDueAt, Value: []byte(now.UTC().Format(time.RFC3339Nano))},
			kgo.RecordHeader{Key: HeaderRedrivenFromPartition, Value: []byte(strconv.Itoa(int(e.DLQPartition)))},
			kgo.RecordHeader{Key: HeaderRedrivenFromOffset, Value: []byte(strconv.FormatInt(e.DLQOffset, 10))})
	}
	if err := produceAll(ctx, tx, moves); err != nil {
		return err
	}
	marks := make([]*kgo.Record, len(es))
	for i, e := range es {
		v, _ := json.Marshal(redriveMark{EventID: e.EventID, At: now.UTC(), Topic: moves[i].Topic, Partition: moves[i].Partition, Offset: moves[i].Offset})
		marks[i] = &kgo.Record{Topic: RedrivenTopic(d.prefix), Key: markKey(id, e.DLQPartition, e.DLQOffset), Value: v}
	}
	return produceAll(ctx, tx, marks)
}

// redriveMark is the value of a redrive's mark: the event, when, and where the move landed.
type redriveMark struct {
	EventID   string    `json:"event_id"`
	At        time.Time `json:"redriven_at"`
	Topic     string    `json:"topic"`
	Partition int32     `json:"partition"`
	Offset    int64     `json:"offset"`
}
