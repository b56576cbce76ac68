package retries

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kgo"
	"pgregory.net/rapid"

	"github.com/socialbridge/bridge/consumers"
	"github.com/socialbridge/bridge/consumers/internal/memkafka"
	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/internal/kafkatest"
	"github.com/socialbridge/bridge/schemas"
)

// modelChecks is how many random runs TestModel makes unless -rapid.checks or RAPID_CHECKS
// says otherwise.
const modelChecks = 1000

// modelSteps is the average number of steps of a run.
const modelSteps = 60

// TestModel drives the real consumer runtime (consumers.Loop, Holds, Tx) and the retries
// handler against memkafka, with a clock the test moves, through random runs of: input
// records (retryable, permanent, undecodable, undecodable for a while), calls that succeed,
// fail, are refused, ask to wait (Retry-After, some past the cap) or take the whole action
// timeout (so batches run out of their call budget), polls of any size, batches that
// commit, abort, lose their partitions or are killed before End, records the transaction
// refuses, revokes, lost sessions, reassignments, members started, stopped and killed.
// After every step it checks the committed state against what the group promises:
//   - each record is moved to each retry topic, and to the DLQ, at most once;
//   - a move is committed only with the offset of the record it moves, and a committed
//     offset passes a record only with its outcome: a move, a dead-letter, or an ok call;
//   - the metrics, counted at commit, equal what was committed.
//
// At the end every fault stops, the partitions are assigned and the clock runs until the
// group is idle: then every input record has ended exactly once, called ok or
// dead-lettered. A failure prints rapid's seed and fail file; see docs/testing.md.
func TestModel(t *testing.T) {
	setRapidDefault("checks", modelChecks)
	setRapidDefault("steps", modelSteps)
	rapid.Check(t, func(t *rapid.T) {
		m := newModel(t)
		defer m.close()
		t.Repeat(m.actions())
		m.drain(t)
	})
}

// actions are the model's steps, each as often as it is named: polls and new records
// most, faults less.
func (m *model) actions() map[string]func(*rapid.T) {
	weights := []struct {
		name   string
		n      int
		action func(*rapid.T)
	}{
		{"Produce", 3, m.Produce}, {"Poll", 6, m.Poll}, {"Tick", 3, m.Tick}, {"Assign", 2, m.Assign},
		{"Revoke", 1, m.Revoke}, {"Lose", 1, m.Lose}, {"Start", 1, m.Start}, {"Stop", 1, m.Stop}, {"Kill", 1, m.Kill},
	}
	out := map[string]func(*rapid.T){"": m.Check}
	for _, w := range weights {
		for i := range w.n {
			out[fmt.Sprintf("%s.%d", w.name, i)] = w.action
		}
	}
	return out
}

// setRapidDefault sets rapid's flag -rapid.name to n unless the command line or the
// environment (RAPID_NAME) chose a value.
func setRapidDefault(name string, n int) {
	if _, ok := os.LookupEnv("RAPID_" + strings.ToUpper(name)); ok {
		return
	}
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "rapid."+name })
	if !set {
		_ = flag.Set("rapid."+name, strconv.Itoa(n))
	}
}

const (
	modelPrefix   = "m."
	modelParts    = 2
	actionTimeout = 3 * time.Second
	modelBudget   = 5 * time.Second
	modelMaxWait  = 10 * time.Second
)

var modelDelays = []time.Duration{time.Second, 2 * time.Second}

// kind is what an input record is.
type kind int

const (
	kindRetryable   kind = iota // retryable: true, or a retryable error code
	kindPermanent               // retryable: false, or a permanent error code
	kindUndecodable             // not Avro
)

// reply is one answer of the action.
type reply int

const (
	ansOK reply = iota
	ansFail
	ansRefused
	ansLimited  // 429 with Retry-After
	ansSlowFail // takes the whole action timeout, then fails
	ansSlowOK   // takes almost the whole action timeout, then succeeds
)

// model is the state machine: the cluster, the members, the action, and the inputs.
type model struct {
	clock   *fakeClock
	cluster *memkafka.Cluster
	action  *scriptedAction
	dec     *flakyDecoder
	enc     *schemas.SingleObject
	workers int
	live    []*member
	all     []*member
	inputs  map[memkafka.TP]map[int64]kind // input records by where they are
	next    int
	checked int // the cluster's version last checked
}

// member is one process of the group: its session, runtime and handler.
type member struct {
	session  *memkafka.Session
	metrics  *consumers.Metrics
	counters map[[3]string]prometheus.Counter // by metric and labels, see counter
	done     chan struct{}
}

// counter returns mb's counter of a metric (processed, moved, dead) with labels.
func (mb *member) counter(metric string, labels ...string) prometheus.Counter {
	k := [3]string{metric}
	copy(k[1:], labels)
	c, ok := mb.counters[k]
	if !ok {
		switch metric {
		case "processed":
			c = mb.metrics.Processed.WithLabelValues(labels...)
		case "moved":
			c = mb.metrics.Moved.WithLabelValues(labels...)
		default:
			c = mb.metrics.DeadLettered.WithLabelValues(labels...)
		}
		mb.counters[k] = c
	}
	return c
}

func newModel(t *rapid.T) *model {
	clock := &fakeClock{now: time.Date(2026, 5, 8, 12, 0, 0, 0, time.UTC)}
	cl := memkafka.NewCluster(clock.Now)
	cl.AddTopic(event.Topic(modelPrefix, event.PostFailed), modelParts, true)
	for i := range modelDelays {
		cl.AddTopic(event.RetryTopic(modelPrefix, i+1), modelParts, true)
	}
	cl.AddTopic(event.DLQTopic(modelPrefix), modelParts, false)
	reader, err := schemas.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	enc, _ := schemas.NewSingleObject()
	m := &model{clock: clock, cluster: cl, enc: enc, inputs: map[memkafka.TP]map[int64]kind{}, checked: -1,
		action:  &scriptedAction{clock: clock, scripts: map[string][]reply{}, calls: map[string]int{}, oks: map[string]int{}},
		dec:     &flakyDecoder{reader: reader, failures: map[string]int{}},
		workers: rapid.IntRange(1, 2).Draw(t, "workers"),
	}
	m.start()
	m.assign(m.live[0], cl.Free())
	return m
}

// start starts a member with no partitions.
func (m *model) start() *member {
	s := m.cluster.NewSession()
	holds := &consumers.Holds{}
	s.Gone = func(cl *memkafka.Session, ps map[string][]int32) { holds.Forget(cl, ps) }
	metrics := consumers.NewMetrics(prometheus.NewRegistry(), "retries")
	log := slog.New(slog.DiscardHandler)
	h := &handler{prefix: modelPrefix, delays: modelDelays, stage: map[string]int{event.Topic(modelPrefix, event.PostFailed): 0},
		action: m.action, dec: m.dec, holds: holds, metrics: metrics, log: log, workers: m.workers,
		budget: modelBudget, maxWait: modelMaxWait, now: m.clock.Now}
	for i := range modelDelays {
		h.stage[event.RetryTopic(modelPrefix, i+1)] = i + 1
	}
	loop := &consumers.Loop{Session: s, Client: s, Handler: h, Holds: holds, MaxRecords: 64, Metrics: metrics, Log: log, Clock: m.clock}
	mb := &member{session: s, metrics: metrics, counters: map[[3]string]prometheus.Counter{}, done: make(chan struct{})}
	go func() {
		defer close(mb.done)
		_ = loop.Run(context.Background())
	}()
	m.live = append(m.live, mb)
	m.all = append(m.all, mb)
	return mb
}

func (m *model) assign(mb *member, tps []memkafka.TP) {
	if len(tps) > 0 {
		mb.session.Assign(tps...)
	}
}

// close ends every member's Loop.
func (m *model) close() {
	for _, mb := range m.live {
		mb.session.Stop()
		<-mb.done
	}
}

func (m *model) pick(t *rapid.T) (*member, int) {
	i := rapid.IntRange(0, len(m.live)-1).Draw(t, "member")
	return m.live[i], i
}

func (m *model) remove(i int) {
	m.live = append(m.live[:i:i], m.live[i+1:]...)
}

// Produce writes an input record, as the ingress would, with the answers its calls get.
func (m *model) Produce(t *rapid.T) {
	m.next++
	id := fmt.Sprintf("evt_%03d", m.next)
	k := kind(rapid.IntRange(0, 2).Draw(t, "kind"))
	ev := &event.Event{ID: id, Type: event.PostFailed, Source: "acme", Provider: "codivupload",
		OccurredAt: m.clock.Now(), ReceivedAt: m.clock.Now(), Raw: []byte(`{}`)}
	switch {
	case k == kindPermanent && rapid.Bool().Draw(t, "by flag"):
		no := false
		ev.Retryable = &no
	case k == kindPermanent:
		ev.ErrorCode = ptr("invalid_media")
	case rapid.Bool().Draw(t, "retryable by flag"):
		yes := true
		ev.Retryable = &yes
	default:
		ev.ErrorCode = ptr("rate_limited")
	}
	value, err := m.enc.Encode(nil, ev)
	if err != nil {
		t.Fatal(err)
	}
	if k == kindUndecodable {
		value = []byte("not avro " + id)
	}
	m.action.script(id, rapid.SliceOfN(rapid.IntRange(0, int(ansSlowOK)), 0, 4).Draw(t, "answers"))
	m.dec.fail(value, rapid.IntRange(0, 2).Draw(t, "decode failures"))
	p := int32(rapid.IntRange(0, modelParts-1).Draw(t, "partition"))
	r := m.cluster.Append(&kgo.Record{Topic: event.Topic(modelPrefix, event.PostFailed), Partition: p, Key: []byte(id), Value: value})
	tp := memkafka.TP{Topic: r.Topic, Partition: r.Partition}
	if m.inputs[tp] == nil {
		m.inputs[tp] = map[int64]kind{}
	}
	m.inputs[tp][r.Offset] = k
}

// Poll runs one iteration of a member's Loop: a poll of up to Limit records a partition,
// and a batch that ends as drawn.
func (m *model) Poll(t *rapid.T) {
	if len(m.live) == 0 {
		t.Skip("no member")
	}
	mb, i := m.pick(t)
	turn := memkafka.Turn{
		Limit:       rapid.IntRange(0, 4).Draw(t, "limit"),
		End:         memkafka.EndPlan(rapid.IntRange(0, 9).Draw(t, "end") / 6), // 6 in 10 commit
		FailProduce: rapid.IntRange(0, 12).Draw(t, "fail produce") / 4,         // 0 in 4 in 13
	}
	mb.session.Step(turn, mb.done)
	if turn.End == memkafka.Kill {
		<-mb.done
		m.remove(i)
	}
}

// Tick moves the clock.
func (m *model) Tick(t *rapid.T) {
	m.clock.Advance(time.Duration(rapid.IntRange(0, 3000).Draw(t, "ms")) * time.Millisecond)
}

// Revoke takes some of a member's partitions in a rebalance.
func (m *model) Revoke(t *rapid.T) {
	if len(m.live) == 0 {
		t.Skip("no member")
	}
	mb, _ := m.pick(t)
	owned := mb.session.Owned()
	if len(owned) == 0 {
		t.Skip("nothing owned")
	}
	mb.session.Revoke(rapid.SliceOfNDistinct(rapid.SampledFrom(owned), 1, len(owned), func(tp memkafka.TP) string {
		return fmt.Sprint(tp)
	}).Draw(t, "revoked")...)
}

// Lose makes a member lose every partition (its session timed out).
func (m *model) Lose(t *rapid.T) {
	if len(m.live) == 0 {
		t.Skip("no member")
	}
	mb, _ := m.pick(t)
	mb.session.Lose()
}

// Assign gives the free partitions to a member.
func (m *model) Assign(t *rapid.T) {
	free := m.cluster.Free()
	if len(m.live) == 0 || len(free) == 0 {
		t.Skip("nothing to assign")
	}
	mb, _ := m.pick(t)
	m.assign(mb, rapid.SliceOfNDistinct(rapid.SampledFrom(free), 1, len(free), func(tp memkafka.TP) string {
		return fmt.Sprint(tp)
	}).Draw(t, "assigned"))
}

// Start starts another member.
func (m *model) Start(t *rapid.T) {
	if len(m.live) >= 3 {
		t.Skip("three members")
	}
	m.start()
}

// Stop stops a member gracefully: its Loop returns, and it leaves the group.
func (m *model) Stop(t *rapid.T) {
	if len(m.live) == 0 {
		t.Skip("no member")
	}
	mb, i := m.pick(t)
	mb.session.Stop()
	<-mb.done
	mb.session.Leave()
	m.remove(i)
}

// Kill kills a member between two batches.
func (m *model) Kill(t *rapid.T) {
	if len(m.live) == 0 {
		t.Skip("no member")
	}
	mb, i := m.pick(t)
	mb.session.Kill()
	<-mb.done
	m.remove(i)
}

// drain stops every fault and runs the group until it is idle, then checks that every
// input record ended.
func (m *model) drain(t *rapid.T) {
	if len(m.live) == 0 {
		m.start()
	}
	for round := 0; round < 300; round++ {
		for i, tp := range m.cluster.Free() {
			m.live[i%len(m.live)].session.Assign(tp)
		}
		for _, mb := range m.live {
			mb.session.Step(memkafka.Turn{}, mb.done)
		}
		m.Check(t)
		if m.idle() {
			m.checkEnded(t)
			return
		}
		m.clock.Advance(time.Second)
	}
	t.Fatalf("the group is not idle after 300 rounds of a second: %s", m.pending())
}

// idle tells whether every record the group reads is committed past.
func (m *model) idle() bool { return m.pending() == "" }

func (m *model) pending() string {
	for _, tp := range m.cluster.Reads() {
		if n, c := int64(len(m.cluster.Log(tp))), m.cluster.Committed(tp); c < n {
			return fmt.Sprintf("%v committed at %d of %d", tp, c, n)
		}
	}
	return ""
}

// Check checks the committed state after every step that changed it.
func (m *model) Check(t *rapid.T) {
	v := m.cluster.Version()
	if v == m.checked {
		return
	}
	m.checked = v
	chains := m.chains(t)
	done := 0
	for o, c := range chains {
		done += c.check(t, m, o)
	}
	m.checkMetrics(t, done)
}

// checkEnded checks, once the group is idle, that every input record ended.
func (m *model) checkEnded(t *rapid.T) {
	for o, c := range m.chains(t) {
		if len(c.dlq) == 0 && m.action.ok(c.key) == 0 {
			t.Fatalf("input %v (%s) ended neither called ok nor dead-lettered: %s", o, c.key, c)
		}
	}
}

// origin is where an input record was written: the identity of an event in the group.
type origin struct {
	topic     string
	partition int32
	offset    int64
}

// chain is what the group made of one input record: its record in the input topic and in
// each retry topic, and in the DLQ.
type chain struct {
	key    string
	kind   kind
	stages [][]*kgo.Record // [0] the input record, [k] its records in retry topic k
	dlq    []*kgo.Record
}

func (c *chain) String() string {
	s := fmt.Sprintf("kind %d", c.kind)
	for k, rs := range c.stages {
		s += fmt.Sprintf(", stage %d: %d records", k, len(rs))
	}
	return s + fmt.Sprintf(", dlq: %d", len(c.dlq))
}

// chains reads the committed logs into each input record's chain.
func (m *model) chains(t *rapid.T) map[origin]*chain {
	out := map[origin]*chain{}
	input := event.Topic(modelPrefix, event.PostFailed)
	for p := range int32(modelParts) {
		tp := memkafka.TP{Topic: input, Partition: p}
		for _, r := range m.cluster.Log(tp) {
			c := &chain{key: string(r.Key), kind: m.inputs[tp][r.Offset], stages: make([][]*kgo.Record, len(modelDelays)+1)}
			c.stages[0] = []*kgo.Record{r}
			out[origin{input, p, r.Offset}] = c
		}
	}
	add := func(topic string, stage int) {
		for p := range int32(modelParts) {
			for _, r := range m.cluster.Log(memkafka.TP{Topic: topic, Partition: p}) {
				o := originOf(t, r)
				c := out[o]
				if c == nil {
					t.Fatalf("%s/%d@%d comes from no input record (%v)", topic, p, r.Offset, o)
				}
				if stage < 0 {
					c.dlq = append(c.dlq, r)
				} else {
					c.stages[stage] = append(c.stages[stage], r)
				}
			}
		}
	}
	for i := range modelDelays {
		add(event.RetryTopic(modelPrefix, i+1), i+1)
	}
	add(event.DLQTopic(modelPrefix), -1)
	return out
}

func originOf(t *rapid.T, r *kgo.Record) origin {
	topic, _ := consumers.Header(r, HeaderOriginTopic)
	p, err1 := strconv.Atoi(kafkatest.Header(r, HeaderOriginPartition))
	o, err2 := strconv.ParseInt(kafkatest.Header(r, HeaderOriginOffset), 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("%s/%d@%d has no origin headers", r.Topic, r.Partition, r.Offset)
	}
	return origin{topic, int32(p), o}
}

// check checks one chain against the committed offsets, and returns 1 when it ended with
// an ok call.
func (c *chain) check(t *rapid.T, m *model, o origin) int {
	last := 0
	for k, rs := range c.stages {
		if len(rs) > 1 {
			t.Fatalf("input %v (%s) is %d times in stage %d: moved more than once", o, c.key, len(rs), k)
		}
		if len(rs) == 1 {
			if k > 0 && (len(c.stages[k-1]) == 0 || !m.passed(c.stages[k-1][0])) {
				t.Fatalf("input %v (%s) moved to retry topic %d, but its record before is not committed past: %s", o, c.key, k, c)
			}
			if got := kafkatest.Header(rs[0], HeaderAttempt); k > 0 && got != strconv.Itoa(k) {
				t.Fatalf("input %v (%s) in retry topic %d has retry-attempt %s", o, c.key, k, got)
			}
			last = k
		}
	}
	if len(c.dlq) > 1 {
		t.Fatalf("input %v (%s) is %d times in the DLQ", o, c.key, len(c.dlq))
	}
	if c.kind != kindRetryable && last > 0 {
		t.Fatalf("input %v (%s), kind %d, was retried: %s", o, c.key, c.kind, c)
	}
	passed := m.passed(c.stages[last][0])
	if len(c.dlq) == 1 && !passed {
		t.Fatalf("input %v (%s) dead-lettered, but its record in stage %d is not committed past: %s", o, c.key, last, c)
	}
	if len(c.dlq) == 1 || !passed {
		return 0
	}
	// Committed past with no move nor dead-letter: only an ok call ends a record so.
	if c.kind != kindRetryable || m.action.ok(c.key) == 0 {
		t.Fatalf("input %v (%s), kind %d: its record in stage %d is committed past, but it was neither moved, dead-lettered nor called ok: %s",
			o, c.key, c.kind, last, c)
	}
	return 1
}

// passed tells whether the group's committed offset of r's partition is past r.
func (m *model) passed(r *kgo.Record) bool {
	return m.cluster.Committed(memkafka.TP{Topic: r.Topic, Partition: r.Partition}) > r.Offset
}

// checkMetrics checks the counters of every member, counted at commit, against what was
// committed: records handled per topic, moves per topic, dead-letters, and ok calls.
func (m *model) checkMetrics(t *rapid.T, done int) {
	for _, tp := range m.cluster.Reads() {
		if tp.Partition != 0 {
			continue
		}
		committed := 0
		for p := range int32(modelParts) {
			committed += int(m.cluster.Committed(memkafka.TP{Topic: tp.Topic, Partition: p}))
		}
		got := 0
		for _, mb := range m.all {
			for _, o := range []string{"done", "moved", "dead_lettered"} {
				got += int(value(mb.counter("processed", tp.Topic, o)))
			}
		}
		if got != committed {
			t.Fatalf("bridge_consumer_processed_total{topic=%s} = %d, but %d records are committed past", tp.Topic, got, committed)
		}
	}
	dlq := 0
	for i := range len(modelDelays) + 1 {
		topic := event.DLQTopic(modelPrefix)
		if i < len(modelDelays) {
			topic = event.RetryTopic(modelPrefix, i+1)
		}
		n := 0
		for p := range int32(modelParts) {
			n += len(m.cluster.Log(memkafka.TP{Topic: topic, Partition: p}))
		}
		got := 0
		for _, mb := range m.all {
			got += int(value(mb.counter("moved", topic)))
		}
		if got != n {
			t.Fatalf("bridge_consumer_moved_total{topic=%s} = %d, but %d records are committed there", topic, got, n)
		}
		dlq = n
	}
	dead, ok := 0, 0
	for _, mb := range m.all {
		for _, reason := range []string{"permanent", "refused", "exhausted", "undecodable"} {
			dead += int(value(mb.counter("dead", reason)))
		}
		for _, r := range m.cluster.Reads() {
			if r.Partition == 0 {
				ok += int(value(mb.counter("processed", r.Topic, "done")))
			}
		}
	}
	if dead != dlq {
		t.Fatalf("bridge_consumer_dead_lettered_total = %d, but the DLQ holds %d records", dead, dlq)
	}
	if ok != done {
		t.Fatalf("bridge_consumer_processed_total{outcome=done} = %d, but %d records ended with an ok call", ok, done)
	}
}

// value is a counter's value.
func value(c prometheus.Counter) float64 {
	var m dto.Metric
	_ = c.Write(&m)
	return m.GetCounter().GetValue()
}

// fakeClock is the model's time: it moves only when the test, a slow call or the Loop's
// pause moves it.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func (c *fakeClock) Sleep(_ context.Context, d time.Duration) { c.Advance(d) }

// scriptedAction is the retry action: each event's calls get its scripted answers in
// turn, then ok.
type scriptedAction struct {
	clock   *fakeClock
	mu      sync.Mutex
	scripts map[string][]reply
	calls   map[string]int
	oks     map[string]int
}

func (a *scriptedAction) script(id string, answers []int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, n := range answers {
		a.scripts[id] = append(a.scripts[id], reply(n))
	}
}

func (a *scriptedAction) ok(id string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.oks[id]
}

func (a *scriptedAction) Call(_ context.Context, ev *event.Event) result {
	a.mu.Lock()
	n := a.calls[ev.ID]
	a.calls[ev.ID]++
	ans := ansOK
	if s := a.scripts[ev.ID]; n < len(s) {
		ans = s[n]
	}
	if ans == ansOK || ans == ansSlowOK {
		a.oks[ev.ID]++
	}
	a.mu.Unlock()
	switch ans {
	case ansFail:
		return result{reason: "action answered 500"}
	case ansRefused:
		return result{permanent: true, reason: "action answered 404"}
	case ansLimited:
		return result{reason: "action answered 429", retryAfter: time.Duration(n%3) * 8 * time.Second} // 0, 8 or 16 s: past the cap
	case ansSlowFail:
		a.clock.Advance(actionTimeout)
		return result{reason: "action: timed out"}
	case ansSlowOK:
		a.clock.Advance(actionTimeout - time.Millisecond)
	}
	return result{ok: true}
}

// flakyDecoder is the real reader, but a value fails with a passing error (the registry
// unreachable) its first few times.
type flakyDecoder struct {
	reader   *schemas.Reader
	mu       sync.Mutex
	failures map[string]int
}

func (d *flakyDecoder) fail(value []byte, n int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.failures[string(value)] = n
}

func (d *flakyDecoder) DecodeWithoutRaw(value []byte, ev *event.Event) error {
	d.mu.Lock()
	n := d.failures[string(value)]
	if n > 0 {
		d.failures[string(value)] = n - 1
	}
	d.mu.Unlock()
	if n > 0 {
		return fmt.Errorf("schema registry unreachable (%d more)", n-1)
	}
	return d.reader.DecodeWithoutRaw(value, ev)
}

func ptr(s string) *string { return &s }
