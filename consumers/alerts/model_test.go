package alerts

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"pgregory.net/rapid"

	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/consumers"
	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/schemas"
)

// TestModel drives the real handler, state, load and delivery code of two members through
// random interleavings, on a simulated Kafka (logs, transactions that commit or abort,
// committed offsets) and a simulated Slack, on fake time (testing/synctest), and checks
// after every step against a simple model of the decisions, replayed over the committed
// keyed records:
//
//   - every message Slack accepted is one the model decided, and no message is accepted
//     twice unless the later copy carries the "may be a repeat" marker;
//   - a resolution is accepted only after its alert;
//   - at the end, with Slack healthy and everything consumed, the last message of every
//     key is the model's last (its alert, or that alert's resolution), every alert Slack
//     got is followed by its resolution or a newer alert, and a message Slack refused for
//     good is given up, never retried forever;
//   - then, with time moved past forget_after, only the keys whose alert is still open
//     have state, in memory and in the state topic: tombstones keep it bounded and never
//     lose a promise.
//
// Steps: events produced to either input topic and partition with received_at in any
// order (within forget_after of the newest: older ones are "late", documented as decided
// without forgotten history), duplicates, undecodable values, batches that commit, abort,
// or die before or after their commit, Slack answering each POST (accepted, refused,
// 5xx, 429, no answer with or without the message taken, or not yet: slow), time passing,
// partitions moving between members, graceful restarts and SIGKILLs.
//
// Thousands of runs; replay one with the seed it prints: see docs/testing.md.
func TestModel(t *testing.T) {
	for name, v := range map[string]int{"rapid.checks": modelChecks, "rapid.steps": modelSteps} {
		if f := flag.Lookup(name); f != nil && !flagSet(name) {
			_ = f.Value.Set(fmt.Sprint(v))
		}
	}
	dec, err := consumers.NewReader(config.SchemaRegistry{})
	if err != nil {
		t.Fatal(err)
	}
	enc, err := schemas.NewSingleObject()
	if err != nil {
		t.Fatal(err)
	}
	keys, ticks := modelKeys()
	rapid.Check(t, func(t *rapid.T) {
		rapid.SyncTest(t, func(t *rapid.T) {
			w := newWorld(t, dec, enc, keys, ticks)
			defer w.shutdown()
			t.Repeat(w.actions())
			w.consumeAll() // Slack is down
			w.tick()       // time passes forget_after while messages are owed
			w.consumeAll()
			w.settle()
			w.checkSettled()
			w.tick()
			w.settle()
			w.checkBounded()
			for i := range w.members {
				w.restart(w.members[i], "ok")
			}
			w.checkBounded()
		})
	})
}

// modelChecks and modelSteps are the number of runs and their average number of steps
// when -rapid.checks and -rapid.steps are not given.
const (
	modelChecks = 2000
	modelSteps  = 50
)

func flagSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// The simulated group: two input topics of two partitions, keyed and state topics of two.
const (
	modelPrefix      = "m."
	modelInputParts  = 2
	modelKeyedParts  = 2
	modelCooldown    = 10 * time.Minute
	modelForgetAfter = 30 * time.Minute
)

// modelKeys are the keys events are drawn for (both keyed partitions have some) and one
// key per keyed partition for the final ticks that move time past forget_after.
func modelKeys() (keys []Key, ticks []Key) {
	part := func(k Key) int { return modelHash.Partition(&kgo.Record{Key: k.bytes()}, modelKeyedParts) }
	ticks = make([]Key, modelKeyedParts)
	per := make([]int, modelKeyedParts)
	for i := 0; len(keys) < 3 || slices.Contains(per, 0) || slices.Contains(ticks, Key{}); i++ {
		k := Key{Source: "acme", Profile: fmt.Sprintf("p%d", i), Platform: "x"}
		switch p := part(k); {
		case per[p] < 2 && len(keys) < 4:
			keys = append(keys, k)
			per[p]++
		case ticks[p] == Key{}:
			ticks[p] = Key{Source: "acme", Profile: fmt.Sprintf("tick%d", i), Platform: "x"}
			if part(ticks[p]) != p {
				ticks[p] = Key{}
			}
		}
	}
	return keys, ticks
}

// topicPartition names one partition.
type topicPartition struct {
	topic string
	part  int32
}

// txn is a simulated Kafka transaction.
type txn struct{ state int }

const (
	txOpen = iota
	txCommitted
	txAborted
)

// logEntry is one record of a simulated log; tx is nil for a plain producer's record.
type logEntry struct {
	r  *kgo.Record
	tx *txn
}

func (e logEntry) visible() bool { return e.tx == nil || e.tx.state == txCommitted }

// member is one process of the group: a handler with its state and workers, until killed.
type member struct {
	id, gen int
	h       *handler
	dead    bool
	pos     map[topicPartition]int64 // where the next poll reads
}

// world is the simulated Kafka, Slack and the two members.
type world struct {
	t             *rapid.T
	dec           *schemas.Reader
	enc           *schemas.SingleObject
	keys, ticks   []Key
	mu            sync.Mutex // guards logs, slack and member.dead against the workers
	logs          map[string][][]logEntry
	committed     map[topicPartition]int64
	owner         map[topicPartition]int
	members       [2]*member
	slack         fakeSlack
	base, newest  time.Time // of the received_at drawn
	events        []*event.Event
	received      map[*kgo.Record]time.Time // of the input and keyed records of events
	nextID        int
	log           *slog.Logger
	metrics       *consumers.Metrics
	alertsMetrics alertsMetrics
}

// modelHash is the keyed topic's partitioner, made once (making one seeds a random
// source).
var modelHash = kgo.StickyKeyPartitioner(nil).ForTopic(Keyed(modelPrefix))

func newWorld(t *rapid.T, dec *schemas.Reader, enc *schemas.SingleObject, keys, ticks []Key) *world {
	w := &world{t: t, dec: dec, enc: enc, keys: keys, ticks: ticks, logs: map[string][][]logEntry{},
		committed: map[topicPartition]int64{}, received: map[*kgo.Record]time.Time{}, owner: map[topicPartition]int{}, slack: fakeSlack{fate: map[string]int{}},
		base: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), log: slog.New(slog.DiscardHandler)}
	w.newest = w.base
	for _, topic := range w.inputs() {
		w.logs[topic] = make([][]logEntry, modelInputParts)
	}
	for _, topic := range []string{Keyed(modelPrefix), State(modelPrefix), DLQ(modelPrefix)} {
		w.logs[topic] = make([][]logEntry, modelKeyedParts)
	}
	for _, tp := range w.readPartitions() {
		w.owner[tp] = rapid.IntRange(0, 1).Draw(t, "owner")
	}
	for i := range w.members {
		w.start(i, 0)
	}
	return w
}

func (w *world) inputs() []string {
	return []string{event.Topic(modelPrefix, event.PostTokenExpired), event.Topic(modelPrefix, event.PostPublished)}
}

// readPartitions are the partitions the group consumes.
func (w *world) readPartitions() []topicPartition {
	var out []topicPartition
	for _, topic := range append(w.inputs(), Keyed(modelPrefix)) {
		for p := range w.logs[topic] {
			out = append(out, topicPartition{topic, int32(p)})
		}
	}
	return out
}

// start starts member i (generation gen), which loads the keyed partitions it owns.
func (w *world) start(i, gen int) {
	cfg := config.Default()
	cfg.Kafka.TopicPrefix = modelPrefix
	cfg.Consumers.Alerts.Cooldown = config.Duration(modelCooldown)
	cfg.Consumers.Alerts.ForgetAfter = config.Duration(modelForgetAfter)
	if w.metrics == nil { // once a run: building them is most of a start's time
		reg := prometheus.NewRegistry()
		w.metrics, w.alertsMetrics = consumers.NewMetrics(reg, "m"), newAlertsMetrics(reg, "m", &parts{})
	}
	owned := &parts{}
	h := newHandler(cfg, modelKeyedParts, w.dec, w.metrics, w.alertsMetrics, owned, w.log)
	h.hash = modelHash
	h.sweepEvery = 0 // every batch: the model checks forgetting as soon as it may happen
	m := &member{id: i, gen: gen, h: h, pos: map[topicPartition]int64{}}
	h.deliver.slack = &fakePoster{w: w, m: m}
	h.deliver.write = w.writer(m)
	h.deliver.backoff = func() backoff.BackOff { return backoff.NewConstantBackOff(time.Second) }
	w.members[i] = m
	var ids []int32
	for tp, o := range w.owner {
		if o == i {
			w.assign(m, tp)
			if tp.topic == Keyed(modelPrefix) {
				ids = append(ids, tp.part)
			}
		}
	}
	w.load(m, ids...)
}

// assign makes m read tp from its committed offset.
func (w *world) assign(m *member, tp topicPartition) { m.pos[tp] = w.committed[tp] }

// load reads the state partitions ids as a member does at an assignment: every committed
// record, then the messages owed are started.
func (w *world) load(m *member, ids ...int32) {
	loaded := map[int32]*partition{}
	w.mu.Lock()
	for _, id := range ids {
		p := newPartition(id)
		for _, e := range w.logs[State(modelPrefix)][id] {
			if e.visible() {
				if err := p.apply(e.r); err != nil {
					w.t.Fatalf("load: %v", err)
				}
			}
		}
		p.loaded()
		loaded[id] = p
	}
	w.mu.Unlock()
	m.h.install(loaded)
}

// writer is the plain producer of m's delivery records; a dead process writes nothing.
func (w *world) writer(m *member) func(context.Context, *kgo.Record) error {
	return func(_ context.Context, r *kgo.Record) error {
		w.mu.Lock()
		defer w.mu.Unlock()
		if m.dead {
			return backoff.Permanent(errDead)
		}
		w.appendLocked(r, nil)
		return nil
	}
}

var errDead = errors.New("the process is dead")

func (w *world) appendLocked(r *kgo.Record, tx *txn) {
	parts := w.logs[r.Topic]
	if r.Partition < 0 || int(r.Partition) >= len(parts) {
		r.Partition = 0
	}
	r.Offset = int64(len(parts[r.Partition]))
	parts[r.Partition] = append(parts[r.Partition], logEntry{r: r, tx: tx})
}

// Produce writes an event to an input partition, received in any order: up to
// forget_after/2 before the newest so far, up to a cool-down after it, but never as late
// as forget_after after the oldest event not yet decided, which would make that one
// "late" (decided without the history forgotten meanwhile, as documented).
func (w *world) Produce(t *rapid.T) {
	k := rapid.SampledFrom(w.keys).Draw(t, "key")
	typ := rapid.SampledFrom([]string{event.PostTokenExpired, event.PostPublished}).Draw(t, "type")
	lo, hi := w.newest.Add(-modelForgetAfter/2), w.newest.Add(modelCooldown+2*time.Minute)
	if oldest, ok := w.oldestUndecided(); ok && hi.After(oldest.Add(modelForgetAfter-time.Minute)) {
		hi = oldest.Add(modelForgetAfter - time.Minute)
	}
	lo = later(lo, w.base)
	at := lo.Add(time.Duration(rapid.IntRange(0, int(hi.Sub(lo)/time.Minute)).Draw(t, "minutes after the earliest allowed")) * time.Minute)
	w.produce(k, typ, at, int32(rapid.IntRange(0, modelInputParts-1).Draw(t, "partition")))
}

// oldestUndecided is the received_at of the oldest event whose keyed record is not yet
// decided in a committed batch.
func (w *world) oldestUndecided() (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var oldest time.Time
	for _, tp := range w.readPartitions() {
		for _, e := range w.logs[tp.topic][tp.part][w.committed[tp]:] {
			if at, ok := w.received[e.r]; ok && e.visible() && (oldest.IsZero() || at.Before(oldest)) {
				oldest = at
			}
		}
	}
	return oldest, !oldest.IsZero()
}

func (w *world) produce(k Key, typ string, at time.Time, part int32) {
	w.nextID++
	id := fmt.Sprintf("%s%d", map[string]string{event.PostTokenExpired: "e", event.PostPublished: "p"}[typ], w.nextID)
	ev := &event.Event{ID: id, Type: typ, Source: k.Source, Provider: "codivupload", OccurredAt: at, ReceivedAt: at,
		ProfileName: &k.Profile, Platform: &k.Platform, PostID: ptr("post_" + id), Raw: []byte(`{}`)}
	if typ == event.PostTokenExpired {
		ev.ReconnectURL = ptr("https://app.example.com/reconnect?p=" + k.Profile + "&x=|>")
	}
	if at.After(w.newest) {
		w.newest = at
	}
	w.events = append(w.events, ev)
	w.produceEvent(ev, part)
}

func (w *world) produceEvent(ev *event.Event, part int32) {
	v, err := w.enc.Encode(nil, ev)
	if err != nil {
		w.t.Fatal(err)
	}
	r := &kgo.Record{Topic: event.Topic(modelPrefix, ev.Type), Partition: part, Key: []byte(ev.ID), Value: v}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.appendLocked(r, nil)
	w.received[r] = ev.ReceivedAt
}

func ptr(s string) *string { return &s }

// Duplicate produces an event again (the ingress may), if it is not late.
func (w *world) Duplicate(t *rapid.T) {
	var fresh []*event.Event
	for _, ev := range w.events {
		if !ev.ReceivedAt.Before(w.newest.Add(-modelForgetAfter / 2)) {
			fresh = append(fresh, ev)
		}
	}
	if len(fresh) == 0 {
		t.Skip("no event to repeat")
	}
	w.produceEvent(rapid.SampledFrom(fresh).Draw(t, "event"), int32(rapid.IntRange(0, modelInputParts-1).Draw(t, "partition")))
}

// Garbage produces a value that never decodes: it is dead-lettered, nothing else.
func (w *world) Garbage(t *rapid.T) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.appendLocked(&kgo.Record{Topic: rapid.SampledFrom(w.inputs()).Draw(t, "topic"), Partition: int32(rapid.IntRange(0, modelInputParts-1).Draw(t, "partition")),
		Value: []byte("{not avro}")}, nil)
}

// Poll runs one batch of a member: what it owns, a few records per partition, in one
// transaction that commits, aborts, or whose process dies before or after the commit.
func (w *world) Poll(t *rapid.T) {
	m := w.members[rapid.IntRange(0, 1).Draw(t, "member")]
	fs, polled := w.fetch(m, rapid.IntRange(1, 4).Draw(t, "records"))
	if len(polled) == 0 {
		t.Skip("nothing to poll")
	}
	outcome := rapid.SampledFrom([]string{"commit", "commit", "commit", "commit", "abort", "die", "die after commit"}).Draw(t, "outcome")
	w.batch(m, fs, polled, outcome)
}

// fetch returns up to n visible records of each partition m owns, from its position.
func (w *world) fetch(m *member, n int) (kgo.Fetches, map[topicPartition]int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var fetch kgo.Fetch
	polled := map[topicPartition]int64{} // the offset after the last record polled
	for _, tp := range w.readPartitions() {
		if w.owner[tp] != m.id {
			continue
		}
		var rs []*kgo.Record
		log := w.logs[tp.topic][tp.part]
		for o := m.pos[tp]; o < int64(len(log)) && len(rs) < n; o++ {
			if log[o].visible() {
				c := *log[o].r
				rs = append(rs, &c)
			}
			polled[tp] = o + 1
		}
		if len(rs) > 0 {
			fetch.Topics = append(fetch.Topics, kgo.FetchTopic{Topic: tp.topic, Partitions: []kgo.FetchPartition{{Partition: tp.part, Records: rs}}})
		}
	}
	if len(fetch.Topics) == 0 {
		return nil, nil
	}
	return kgo.Fetches{fetch}, polled
}

// fakeBatch is a batch's transaction on the simulated Kafka. The handler produces from a
// goroutine per input partition: the order their records reach the log is drawn.
type fakeBatch struct {
	w     *world
	tx    *txn
	mu    sync.Mutex
	out   map[string][]*kgo.Record // by the partition the record came from
	holds map[topicPartition]int64
}

func (b *fakeBatch) Produce(_ context.Context, r *kgo.Record) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.out[source(r)] = append(b.out[source(r)], r)
}

// source names the producer of r: a forwarder by its input partition, or the decider.
func source(r *kgo.Record) string {
	if n, err := readNotice(r.Value); err == nil {
		return fmt.Sprint(n.Origin.Topic, n.Origin.Partition)
	}
	if t, ok := consumers.Header(r, consumers.HeaderDLQOriginTopic); ok {
		p, _ := consumers.Header(r, consumers.HeaderDLQOriginPartition)
		return t + p
	}
	return "decider"
}

// flush appends the records produced, the producers in a drawn order.
func (b *fakeBatch) flush(t *rapid.T) {
	srcs := slices.Sorted(maps.Keys(b.out))
	srcs = rapid.Permutation(srcs).Draw(t, "producers' order")
	b.w.mu.Lock()
	defer b.w.mu.Unlock()
	for _, src := range srcs {
		for _, r := range b.out[src] {
			b.w.appendLocked(r, b.tx)
			if n, err := readNotice(r.Value); err == nil {
				b.w.received[r] = n.ReceivedAt
			}
		}
	}
}

func (b *fakeBatch) Count(string, string) {}

func (b *fakeBatch) CountDeadLettered(string) {}

func (b *fakeBatch) Hold(r *kgo.Record, _ time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.holds[topicPartition{r.Topic, r.Partition}] = r.Offset
}

func (w *world) batch(m *member, fs kgo.Fetches, polled map[topicPartition]int64, outcome string) {
	b := &fakeBatch{w: w, tx: &txn{}, out: map[string][]*kgo.Record{}, holds: map[topicPartition]int64{}}
	if err := m.h.handle(context.Background(), b, fs); err != nil {
		w.t.Fatalf("handle: %v", err)
	}
	b.flush(w.t)
	switch outcome {
	case "abort":
		w.end(b.tx, txAborted)
		for tp := range m.pos {
			m.pos[tp] = w.committed[tp]
		}
		m.h.Ended(false)
	case "die":
		w.kill(m) // the broker aborts its transaction when the restarted process fences it
		w.end(b.tx, txAborted)
		w.start(m.id, m.gen+1)
	default:
		w.end(b.tx, txCommitted)
		for tp, next := range polled {
			if held, ok := b.holds[tp]; ok {
				next = held
			}
			m.pos[tp], w.committed[tp] = next, next
		}
		if outcome == "die after commit" {
			w.kill(m)
			w.start(m.id, m.gen+1)
			return
		}
		m.h.Ended(true)
	}
}

func (w *world) end(tx *txn, state int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	tx.state = state
}

// kill SIGKILLs m: nothing it does from now on has an effect; each POST in flight did or
// did not reach Slack, and m never learns which.
func (w *world) kill(m *member) {
	w.mu.Lock()
	m.dead = true
	w.mu.Unlock()
	w.drop(m, nil, true, func(c *call) {
		if rapid.Bool().Draw(w.t, "slack took it before the kill") {
			w.accept(c, false)
		}
		c.answer <- errDead
	})
}

// drop gives up m's partitions ids (all: every one), as a revoke does: the workers stop,
// each POST in flight is answered by answer, and drop returns when they are done.
func (w *world) drop(m *member, ids []int32, all bool, answer func(*call)) {
	done := make(chan struct{})
	go func() {
		m.h.parts.drop(ids, all)
		close(done)
	}()
	for range 100 {
		synctest.Wait()
		select {
		case <-done:
			return
		default:
		}
		calls := w.take(func(c *call) bool { return c.m == m && (all || slices.Contains(ids, c.part())) })
		for _, c := range calls {
			answer(c)
		}
		if len(calls) == 0 {
			time.Sleep(time.Minute) // a worker between tries: its wait ends with its partition
		}
	}
	w.t.Fatalf("member %d: the workers of %v did not stop", m.id, ids)
}

// Answer lets Slack answer one POST in flight.
func (w *world) Answer(t *rapid.T) {
	calls := w.pending()
	if len(calls) == 0 {
		t.Skip("nothing in flight")
	}
	c := rapid.SampledFrom(calls).Draw(t, "call")
	w.take(func(o *call) bool { return o == c })
	w.answer(t, c, rapid.SampledFrom([]string{"ok", "ok", "5xx", "429", "no answer, taken", "no answer, lost"}).Draw(t, "answer"))
}

// answer answers c: refused when the message's fate says Slack never takes it as it is,
// else as drawn.
func (w *world) answer(t *rapid.T, c *call, how string) {
	fate := w.fateOf(t, c)
	if fate == fateRefusesAll || fate == fateRefusesBlocks && c.msg.blocks {
		w.refuse(c)
		c.answer <- fmt.Errorf("%w: slack answered 400 Bad Request: invalid_blocks", errRefused)
		return
	}
	switch how {
	case "ok":
		w.accept(c, true)
		c.answer <- nil
	case "5xx":
		c.answer <- errors.New("slack answered 503 Service Unavailable")
	case "429":
		c.answer <- fmt.Errorf("slack answered 429: %w", &backoff.RetryAfterError{Duration: 3 * time.Second})
	case "no answer, taken":
		w.accept(c, false)
		c.answer <- fmt.Errorf("%w: timeout", errNoAnswer)
	default:
		c.answer <- fmt.Errorf("%w: connection reset", errNoAnswer)
	}
}

// Wait lets time pass: workers waiting between tries try again.
func (w *world) Wait(t *rapid.T) {
	time.Sleep(time.Duration(rapid.IntRange(1, 90).Draw(t, "seconds")) * time.Second)
}

// Move gives a partition to the other member, as a rebalance does: the old owner gives it
// up (its POSTs in flight are finished and recorded) before the new one loads it.
func (w *world) Move(t *rapid.T) {
	tp := rapid.SampledFrom(w.readPartitions()).Draw(t, "partition")
	from := w.members[w.owner[tp]]
	to := w.members[1-w.owner[tp]]
	w.owner[tp] = to.id
	delete(from.pos, tp)
	if tp.topic == Keyed(modelPrefix) {
		w.drop(from, []int32{tp.part}, false, func(c *call) {
			w.answer(t, c, rapid.SampledFrom([]string{"ok", "5xx", "no answer, taken", "no answer, lost"}).Draw(t, "answer in flight"))
		})
		w.load(to, tp.part)
	}
	w.assign(to, tp)
}

// Restart stops a member gracefully (its POSTs in flight finish and are recorded) and
// starts it again.
func (w *world) Restart(t *rapid.T) {
	w.restart(w.members[rapid.IntRange(0, 1).Draw(t, "member")], "")
}

// restart restarts m; Slack answers its POSTs in flight as how says (drawn when empty).
func (w *world) restart(m *member, how string) {
	w.drop(m, nil, true, func(c *call) {
		answer := how
		if answer == "" {
			answer = rapid.SampledFrom([]string{"ok", "5xx", "no answer, taken", "no answer, lost"}).Draw(w.t, "answer in flight")
		}
		w.answer(w.t, c, answer)
	})
	w.start(m.id, m.gen+1)
}

// Kill SIGKILLs a member and starts it again (as a static member restarted at once).
func (w *world) Kill(t *rapid.T) {
	m := w.members[rapid.IntRange(0, 1).Draw(t, "member")]
	w.kill(m)
	w.start(m.id, m.gen+1)
}

// actions are the steps, weighted: events and batches are the most frequent.
func (w *world) actions() map[string]func(*rapid.T) {
	a := map[string]func(*rapid.T){"": w.Check, "Duplicate": w.Duplicate, "Garbage": w.Garbage, "Wait": w.Wait,
		"Move": w.Move, "Restart": w.Restart, "Kill": w.Kill}
	for i := range 6 {
		a[fmt.Sprint("Produce", i)] = w.Produce
		a[fmt.Sprint("Poll", i)] = w.Poll
		a[fmt.Sprint("Answer", i)] = w.Answer
	}
	return a
}

// Check runs after every step.
func (w *world) Check(t *rapid.T) {
	synctest.Wait()
	w.checkAccepted(w.model())
}

// shutdown stops everything the run started: no goroutine may outlive the bubble.
func (w *world) shutdown() {
	for _, m := range w.members {
		w.drop(m, nil, true, func(c *call) { c.answer <- errDead })
	}
}
