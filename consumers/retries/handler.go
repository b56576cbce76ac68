package retries

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/socialbridge/bridge/consumers"
	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/internal/telemetry"
)

// handler handles one batch of the input topic and the retry topics.
type handler struct {
	prefix  string
	delays  []time.Duration
	stage   map[string]int // topic → failed calls its records have behind them
	action  caller
	dec     decoder // values are read without their raw payload: a move forwards the record as read
	holds   *consumers.Holds
	metrics *consumers.Metrics
	log     *slog.Logger
	workers int           // calls in flight at once
	budget  time.Duration // no call starts later than this into a batch
	maxWait time.Duration // the longest a record waits in a retry topic (config.MaxRetryWait)
	now     func() time.Time
	group   string
	tracer  trace.Tracer // nil: tracing is off
}

// caller calls the retry action for one failed post (Action).
type caller interface {
	Call(ctx context.Context, ev *event.Event) result
}

// decoder reads a record's value without its raw payload (schemas.Reader).
type decoder interface {
	DecodeWithoutRaw(value []byte, ev *event.Event) error
}

// job is one record of a batch and what became of it.
type job struct {
	r       *kgo.Record
	stage   int
	calls   int // failed calls of the action so far, this batch's included
	ev      event.Event
	move    *kgo.Record // produced in the batch's transaction; nil when the retry succeeded
	outcome string      // done, moved or dead_lettered
	class   string      // why dead-lettered: permanent, refused, exhausted, undecodable
	reason  string      // … in words
	held    bool        // not started in this batch, or after one that was not: polled again
}

// holdDecode is how long a partition waits when a value cannot be decoded for a passing
// reason (the schema registry unreachable).
const holdDecode = time.Second

func (h *handler) Handle(ctx context.Context, tx *consumers.Tx, fs kgo.Fetches) error {
	var lanes [][]*job
	fs.EachPartition(func(p kgo.FetchTopicPartition) {
		lanes = append(lanes, h.ready(tx.Client(), p.Records))
	})
	jobs := interleave(lanes)
	h.run(ctx, jobs)
	h.holdUnstarted(tx.Client(), jobs)
	for _, j := range jobs {
		if !j.held {
			h.end(ctx, tx, j)
		}
	}
	return nil
}

// end puts j's outcome in the transaction: its move, and its counts, which count when the
// batch commits.
func (h *handler) end(ctx context.Context, tx *consumers.Tx, j *job) {
	if j.move != nil {
		tx.Produce(ctx, j.move)
	}
	tx.Count(j.r.Topic, j.outcome)
	if j.outcome == "dead_lettered" {
		tx.CountDeadLettered(j.class)
		h.log.Info("dead-lettered", "topic", j.r.Topic, "partition", j.r.Partition, "offset", j.r.Offset, "event_id", j.ev.ID, "reason", j.reason)
	}
}

func (h *handler) Ended(bool) {}

// ready returns the jobs of one partition's records up to the first that cannot be handled
// yet, which it holds: not due, or not decodable for now.
func (h *handler) ready(cl consumers.Fetcher, records []*kgo.Record) []*job {
	all := make([]job, len(records)) // one allocation for the partition's jobs
	jobs := make([]*job, 0, len(records))
	now := h.now()
	for i, r := range records {
		j := &all[i]
		j.r, j.stage, j.calls = r, h.stage[r.Topic], h.stage[r.Topic]
		if due := h.due(r, j.stage); due.After(now) {
			h.holds.Hold(cl, r, due)
			break
		}
		if err := h.dec.DecodeWithoutRaw(r.Value, &j.ev); err != nil {
			if !consumers.Undecodable(err) {
				h.log.Warn("decode failed; partition held", "topic", r.Topic, "partition", r.Partition, "err", err)
				h.holds.Hold(cl, r, now.Add(holdDecode))
				break
			}
			h.deadLetter(j, reasonUndecodable, "undecodable value: "+err.Error())
		}
		jobs = append(jobs, j)
	}
	return jobs
}

// due is when a record of a retry topic may be tried: its retry-due-at header, or its
// timestamp plus the topic's delay when the header is missing or unreadable; never later
// than its timestamp plus maxWait, so that it is read before its topic deletes it.
func (h *handler) due(r *kgo.Record, stage int) time.Time {
	if stage == 0 {
		return time.Time{}
	}
	due := r.Timestamp.Add(h.delays[stage-1])
	if v, ok := consumers.Header(r, HeaderDueAt); ok {
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			due = t
		}
	}
	if limit := r.Timestamp.Add(h.maxWait); due.After(limit) {
		return limit
	}
	return due
}

// interleave orders the jobs one from each partition in turn, keeping each partition's order,
// so that calls cut off by the budget leave a prefix of every partition done.
func interleave(lanes [][]*job) []*job {
	total := 0
	for _, l := range lanes {
		total += len(l)
	}
	out := make([]*job, 0, total)
	for i := 0; ; i++ {
		n := len(out)
		for _, l := range lanes {
			if i < len(l) {
				out = append(out, l[i])
			}
		}
		if len(out) == n {
			return out
		}
	}
}

// run does the jobs' calls on h.workers goroutines (each keeps the stack the HTTP client
// grew, where a goroutine per call would grow one each time). No call starts later than
// the budget into the batch; the jobs not started by then are held (holdUnstarted).
func (h *handler) run(ctx context.Context, jobs []*job) {
	deadline := h.now().Add(h.budget)
	next := make(chan *job)
	var wg sync.WaitGroup
	for range min(h.workers, len(jobs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range next {
				h.traced(ctx, j)
			}
		}()
	}
	for _, j := range jobs {
		if j.outcome != "" {
			continue // dead-lettered without a call
		}
		if !h.dispatch(next, j, deadline) {
			break
		}
	}
	close(next)
	wg.Wait()
}

// dispatch hands j to the next free worker, unless the deadline passes first.
func (h *handler) dispatch(next chan<- *job, j *job, deadline time.Time) bool {
	left := deadline.Sub(h.now())
	if left <= 0 {
		return false
	}
	t := time.NewTimer(left)
	defer t.Stop()
	select {
	case next <- j:
		return true
	case <-t.C:
		return false
	}
}

// holdUnstarted holds each partition at its first job that was not started (the budget ran
// out before it), and marks that job and every later one of its partition held: they are
// polled again, and the batch commits the partition's offset up to, not past, that job.
// The partition may already be held further on (at a record not due yet): the earlier
// hold replaces it.
func (h *handler) holdUnstarted(cl consumers.Fetcher, jobs []*job) {
	now := h.now()
	cut := map[partition]bool{}
	for _, j := range jobs { // interleaved, each partition's jobs in order
		p := partition{j.r.Topic, j.r.Partition}
		if !cut[p] && j.outcome == "" {
			h.holds.Hold(cl, j.r, now)
			cut[p] = true
		}
		j.held = cut[p]
	}
}

// partition names a topic's partition.
type partition struct {
	topic string
	id    int32
}

// traced is retry in the span of processing j's record, which the retry action's call and
// j's move, if any, are children of: they stay in the trace of the delivery.
func (h *handler) traced(ctx context.Context, j *job) {
	ctx, span := telemetry.Process(h.tracer, ctx, j.r, h.group)
	defer span.End()
	h.retry(ctx, j)
	if j.move != nil {
		telemetry.Within(h.tracer, ctx, j.move)
	}
	if span.IsRecording() {
		span.SetAttributes(attribute.String("bridge.event.id", j.ev.ID), attribute.String("bridge.outcome", j.outcome),
			attribute.Int("bridge.retry.calls", j.calls))
		if j.outcome == "dead_lettered" {
			span.SetStatus(codes.Error, j.reason)
		}
	}
}

// retry decides one decoded failure: dead-lettered when permanent, else the action is
// called, and a failed call moves the record one delay further, or to the dead-letter topic
// after the last delay.
func (h *handler) retry(ctx context.Context, j *job) {
	ev := &j.ev
	if !retryable(ev.Retryable, ev.ErrorCode) {
		h.deadLetter(j, reasonPermanent, "permanent failure: "+describe(ev))
		return
	}
	start := h.now()
	res := h.action.Call(ctx, ev)
	h.metrics.Effect.WithLabelValues(effectOutcome(res)).Observe(h.now().Sub(start).Seconds())
	j.calls++
	attempts := j.calls
	switch {
	case res.ok:
		j.outcome = "done"
	case res.permanent:
		h.deadLetter(j, reasonRefused, res.reason)
	case attempts > len(h.delays):
		h.deadLetter(j, reasonExhausted, fmt.Sprintf("retries exhausted after %d calls: %s", attempts, res.reason))
	default:
		wait := max(h.delays[attempts-1], res.retryAfter)
		if wait > h.maxWait {
			h.log.Warn("Retry-After capped: the retry topic would delete the record before it is due",
				"event_id", ev.ID, "retry_after", res.retryAfter, "cap", h.maxWait)
			wait = h.maxWait
		}
		j.move = h.moved(j, event.RetryTopic(h.prefix, attempts), res.reason,
			kgo.RecordHeader{Key: HeaderDueAt, Value: []byte(h.now().Add(wait).UTC().Format(time.RFC3339Nano))})
		j.outcome = "moved"
	}
	if h.log.Enabled(ctx, slog.LevelDebug) { // spares building the attributes of every call
		h.log.Debug("retried", "event_id", ev.ID, "attempt", attempts, "outcome", j.outcome, "reason", res.reason)
	}
}

// The classes of dead letters, the reason label of bridge_consumer_dead_lettered_total.
const (
	reasonUndecodable = "undecodable" // the value cannot be decoded with any schema
	reasonPermanent   = "permanent"   // the failure says it is not worth retrying
	reasonRefused     = "refused"     // the retry API answered 400, 404, 410 or 422
	reasonExhausted   = "exhausted"   // every delay was tried
)

var deadLetterReasons = []string{reasonUndecodable, reasonPermanent, reasonRefused, reasonExhausted}

func (h *handler) deadLetter(j *job, class, reason string) {
	j.move = h.moved(j, event.DLQTopic(h.prefix), reason)
	j.outcome, j.class, j.reason = "dead_lettered", class, reason
}

// moved is j's record for topic with the headers of a move. The origin is where the record
// first entered the group, carried over from a retry topic's headers.
func (h *handler) moved(j *job, topic, reason string, extra ...kgo.RecordHeader) *kgo.Record {
	origin, okT := consumers.Header(j.r, HeaderOriginTopic)
	partition, okP := consumers.Header(j.r, HeaderOriginPartition)
	offset, okO := consumers.Header(j.r, HeaderOriginOffset)
	if !okT || !okP || !okO {
		origin, partition, offset = j.r.Topic, strconv.Itoa(int(j.r.Partition)), strconv.FormatInt(j.r.Offset, 10)
	}
	headers := append([]kgo.RecordHeader{
		{Key: HeaderAttempt, Value: []byte(strconv.Itoa(j.calls))},
		{Key: HeaderError, Value: []byte(reason)},
		{Key: HeaderOriginTopic, Value: []byte(origin)},
		{Key: HeaderOriginPartition, Value: []byte(partition)},
		{Key: HeaderOriginOffset, Value: []byte(offset)},
	}, extra...)
	return consumers.Forward(j.r, topic, headers...)
}

func effectOutcome(r result) string {
	switch {
	case r.ok:
		return "ok"
	case r.permanent:
		return "refused"
	}
	return "failed"
}

func describe(ev *event.Event) string {
	s := "retryable=false"
	if ev.Retryable == nil {
		s = "error code classed permanent"
	}
	if ev.ErrorCode != nil {
		s += ", error_code " + *ev.ErrorCode
	}
	if ev.ErrorMessage != nil {
		s += ": " + *ev.ErrorMessage
	}
	return s
}
