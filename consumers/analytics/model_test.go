package analytics

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"pgregory.net/rapid"

	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/consumers"
	"github.com/socialbridge/bridge/consumers/analytics/store"
	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/schemas"
)

// TestModel is the model-based test of the analytics consumer (docs/testing.md, "Model test
// of the analytics consumer"): two members of the group share one SQLite database and a
// topic whose partitions hold known logs; rapid draws sequences of polls, batches gathered
// and written, transactions that fail, revokes, lost partitions, rejoins and reassignments,
// graceful stops (whose last transactions may fail) and kills, and drives the real code with
// them: the rebalance callbacks, the poll's tagging and decoding, the writer and the store.
// Only Kafka is a stand-in, fed the logs. After every step that may have written, the
// database must hold each record counted once if it is before its partition's stored offset
// and not at all if it is after: the totals are the distinct offsets counted, and the stored
// offset never passes a record not counted. After every step, no poll may have left
// rebalances blocked. At the end a new member takes every partition and drains it: then
// every record counts once.
func TestModel(t *testing.T) {
	if checksNotGiven() {
		setChecks(t, modelChecks())
	}
	dir := modelDir(t)
	template := filepath.Join(dir, "template.db")
	st, err := store.Open(t.Context(), "sqlite:"+template) // migrated once, copied for every run
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	var runs atomic.Int64
	rapid.Check(t, func(rt *rapid.T) {
		path := filepath.Join(dir, fmt.Sprintf("run%d.db", runs.Add(1)))
		if err := copyFile(template, path); err != nil {
			rt.Fatal(err)
		}
		m := newModel(rt, path)
		defer m.close()
		defer removeDatabase(path)
		rt.Repeat(modelActions(m))
		m.drain(rt)
	})
}

// modelActions are the model's actions, each as often as its weight: polls the most, so
// that batches often hold several, then writes, assignments and rejoins, which bring a
// partition's old and new polls together.
func modelActions(m *analyticsModel) map[string]func(*rapid.T) {
	actions := rapid.StateMachineActions(m)
	for name, weight := range map[string]int{"Poll": 4, "Write": 2, "Assign": 2, "Rejoin": 2} {
		for i := 2; i <= weight; i++ {
			actions[fmt.Sprintf("%s%d", name, i)] = actions[name]
		}
	}
	return actions
}

// modelChecks is how many sequences TestModel runs unless -rapid.checks says (testing.Short:
// a fifth): thousands, but a few hundred under the race detector, which slows SQLite about
// tenfold and finds nothing more here (the model drives the consumer from one goroutine;
// make test runs the thousands without it too).
func modelChecks() int {
	if raceDetector {
		return 100
	}
	return 2000
}

const (
	modelTopic      = "m"
	modelPartitions = 3
	modelOffsets    = 20 // the length of each partition's log
	modelMembers    = 2
)

var errInjected = errors.New("model: the database failed this transaction")

// analyticsModel is the state of one sequence: the logs, who holds which partition, and the
// members.
type analyticsModel struct {
	database string
	reader   *store.Store   // reads what the database holds, for the checks
	markers  [][]bool       // by partition and offset: no record there (a transaction marker)
	wrote    bool           // a transaction may have committed since the last check
	maxBatch int            // the members' maxBatch
	members  []*modelMember // a and b; nil: not running
	owner    map[int32]*modelMember
}

// modelMember is one consumer process: the real Service with its writer, polling a stand-in
// for Kafka.
type modelMember struct {
	name   string
	s      *Service
	kafka  *fakeKafka
	queue  chan poll // the polls the writer has not gathered
	w      *writer
	ctx    context.Context
	cancel context.CancelFunc
	fail   []bool // the outcomes the next transactions are told to have (false: fail); then all commit
}

// fakeKafka stands in for the consumer's Kafka client: a poll returns what the model set.
type fakeKafka struct {
	pos     map[int32]int64 // where each partition held is fetched from next
	next    kgo.Fetches
	polls   int
	allowed int // AllowRebalance calls
}

func (f *fakeKafka) PollRecords(context.Context, int) kgo.Fetches {
	f.polls++
	n := f.next
	f.next = nil
	return n
}

func (f *fakeKafka) AllowRebalance() { f.allowed++ }

func newModel(t *rapid.T, path string) *analyticsModel {
	m := &analyticsModel{database: "sqlite:" + path, owner: map[int32]*modelMember{},
		maxBatch: rapid.IntRange(1, 30).Draw(t, "maxBatch")}
	for range modelPartitions {
		markers := make([]bool, modelOffsets)
		for o := range markers {
			markers[o] = rapid.IntRange(0, 5).Draw(t, "marker") == 0
		}
		m.markers = append(m.markers, markers)
	}
	var err error
	if m.reader, err = store.Open(context.Background(), m.database); err != nil {
		t.Fatal(err)
	}
	m.members = make([]*modelMember, modelMembers)
	return m
}

// member draws a member, starting it if it is not running.
func (m *analyticsModel) member(t *rapid.T) *modelMember {
	return m.alive(t, rapid.IntRange(0, len(m.members)-1).Draw(t, "member"))
}

// alive returns member i, starting it if it is not running (a process starts when it is
// first needed, to spare the opening of databases nobody uses).
func (m *analyticsModel) alive(t *rapid.T, i int) *modelMember {
	if m.members[i] == nil {
		m.members[i] = m.start(t, string(rune('a'+i)))
	}
	return m.members[i]
}

// start starts a member: a process with nothing in hand and no partition.
func (m *analyticsModel) start(t *rapid.T, name string) *modelMember {
	st, err := store.Open(context.Background(), m.database)
	if err != nil {
		t.Fatal(err)
	}
	mem := &modelMember{name: name, kafka: &fakeKafka{pos: map[int32]int64{}}, queue: make(chan poll, 1000)}
	mem.s = newService(slog.New(slog.NewTextHandler(io.Discard, nil)), "model", st, m.maxBatch)
	mem.s.fetcher, mem.s.decoder = mem.kafka, modelReader()
	mem.s.beforeCommit = func() error {
		if len(mem.fail) > 0 {
			ok := mem.fail[0]
			mem.fail = mem.fail[1:]
			if !ok {
				return errInjected
			}
		}
		return nil
	}
	mem.w = &writer{s: mem.s, polls: mem.queue}
	mem.ctx, mem.cancel = context.WithCancel(context.Background())
	return mem
}

// end ends a member's process, stopped or killed; the group gives its partitions to nobody
// until an Assign, and a new process starts when the member is next needed.
func (m *analyticsModel) end(mem *modelMember) {
	mem.cancel()
	mem.s.store.Close()
	for p, o := range m.owner {
		if o == mem {
			delete(m.owner, p)
		}
	}
	m.members[slices.Index(m.members, mem)] = nil
}

func (m *analyticsModel) close() {
	for _, mem := range m.members {
		if mem != nil {
			m.end(mem)
		}
	}
	m.reader.Close()
}

// Assign gives a partition nobody holds to a member, as the group does: OnPartitionsAssigned,
// then AdjustFetchOffsetsFn, whose offset the partition is fetched from.
func (m *analyticsModel) Assign(t *rapid.T) {
	var free []int32
	for p := range int32(modelPartitions) {
		if m.owner[p] == nil {
			free = append(free, p)
		}
	}
	if len(free) == 0 {
		t.Skip("every partition is held")
	}
	m.give(t, m.member(t), rapid.SampledFrom(free).Draw(t, "partition"))
}

// give assigns p to mem: OnPartitionsAssigned, then AdjustFetchOffsetsFn, whose offset the
// partition is fetched from.
func (m *analyticsModel) give(t *rapid.T, mem *modelMember, p int32) {
	mem.s.assigned(mem.ctx, nil, map[string][]int32{modelTopic: {p}})
	offsets, err := mem.s.startFromStore(mem.ctx, map[string]map[int32]kgo.Offset{modelTopic: {p: kgo.NewOffset()}})
	if err != nil {
		t.Fatal(err)
	}
	mem.kafka.pos[p] = max(0, offsets[modelTopic][p].EpochOffset().Offset) // AtStart is negative
	m.owner[p] = mem
}

// Rejoin has a member lose every partition and be given them back at once, as when its
// session timed out and it joined again alone: the new assignments read the partitions
// from the database's offsets while the old polls may still wait.
func (m *analyticsModel) Rejoin(t *rapid.T) {
	mem := m.running(t)
	held := m.held(mem)
	if len(held) == 0 {
		t.Skip("the member holds nothing")
	}
	m.take(mem, held)
	for _, p := range held {
		m.give(t, mem, p)
	}
}

// Revoke takes a partition from its member, as a cooperative rebalance does.
func (m *analyticsModel) Revoke(t *rapid.T) {
	held := m.held(nil)
	if len(held) == 0 {
		t.Skip("no partition is held")
	}
	p := rapid.SampledFrom(held).Draw(t, "partition")
	m.take(m.owner[p], []int32{p})
}

// Lose takes every partition of a member at once, as a session timeout or a fence does
// (OnPartitionsLost).
func (m *analyticsModel) Lose(t *rapid.T) {
	mem := m.running(t)
	held := m.held(mem)
	if len(held) == 0 {
		t.Skip("the member holds nothing")
	}
	m.take(mem, held)
}

func (m *analyticsModel) take(mem *modelMember, ps []int32) {
	mem.s.revoked(mem.ctx, nil, map[string][]int32{modelTopic: ps})
	for _, p := range ps {
		delete(m.owner, p)
		delete(mem.kafka.pos, p)
	}
}

// held lists the partitions mem holds, or that anybody holds if mem is nil.
func (m *analyticsModel) held(mem *modelMember) []int32 {
	var out []int32
	for p := range int32(modelPartitions) {
		if o := m.owner[p]; o != nil && (mem == nil || o == mem) {
			out = append(out, p)
		}
	}
	return out
}

// Poll has a member poll: a few runs of its partitions' next records, a partition sometimes
// in two runs, through the member's real poll (tagging, decoding, handing to the writer).
func (m *analyticsModel) Poll(t *rapid.T) {
	mem := m.running(t)
	var fetched []kgo.FetchPartition
	for range rapid.IntRange(1, 3).Draw(t, "runs") {
		ready := m.ready(mem)
		if len(ready) == 0 {
			break
		}
		p := rapid.SampledFrom(ready).Draw(t, "partition")
		fetched = append(fetched, m.fetch(mem, p, rapid.IntRange(1, 6).Draw(t, "records")))
	}
	if len(fetched) == 0 {
		t.Skip("nothing to fetch")
	}
	mem.kafka.next = kgo.Fetches{{Topics: []kgo.FetchTopic{{Topic: modelTopic, Partitions: fetched}}}}
	if !mem.s.pollOnce(mem.ctx, mem.queue) {
		t.Fatal("the poll did not reach the writer")
	}
}

// ready lists the partitions mem holds that have records from their fetch position on.
func (m *analyticsModel) ready(mem *modelMember) []int32 {
	var out []int32
	for _, p := range m.held(mem) {
		for o := mem.kafka.pos[p]; o < modelOffsets; o++ {
			if !m.markers[p][o] {
				out = append(out, p)
				break
			}
		}
	}
	return out
}

// fetch returns up to n records of partition p from mem's fetch position, passing markers
// as Kafka does, and moves the position past them.
func (m *analyticsModel) fetch(mem *modelMember, p int32, n int) kgo.FetchPartition {
	out := kgo.FetchPartition{Partition: p}
	o := mem.kafka.pos[p]
	for ; o < modelOffsets && len(out.Records) < n; o++ {
		if !m.markers[p][o] {
			out.Records = append(out.Records, &kgo.Record{Topic: modelTopic, Partition: p, Offset: o, Value: modelValues()[p][o]})
		}
	}
	mem.kafka.pos[p] = o
	return out
}

// Gather has a member's writer put its next batch in hand from the polls waiting, to be
// written later (meanwhile its partitions may move).
func (m *analyticsModel) Gather(t *rapid.T) {
	mem := m.running(t)
	if mem.w.batch != nil || mem.w.held == nil && len(mem.queue) == 0 {
		t.Skip("a batch in hand already, or no poll waiting")
	}
	mem.w.gather(false)
}

// Write has a member's writer try its batch in hand once, gathering one first if it has
// none; the transaction fails sometimes, and the batch stays in hand to be tried again, as
// the writer does after a backoff.
func (m *analyticsModel) Write(t *rapid.T) {
	mem := m.running(t)
	if mem.w.batch == nil && !mem.w.gather(false) {
		t.Skip("nothing to write")
	}
	commits := rapid.IntRange(0, 3).Draw(t, "commits") > 0
	mem.fail = []bool{commits}
	m.wrote = true
	err := mem.w.attempt(mem.ctx)
	if commits && err != nil || !commits && !errors.Is(err, errInjected) {
		t.Fatalf("member %s: a transaction told to commit=%v ended with %v", mem.name, commits, err)
	}
}

// Stop stops a member gracefully: its context ends, its writer finishes what it has in hand
// (the real run loop), of which one transaction may fail, and it leaves the group. It
// starts again as a new process.
func (m *analyticsModel) Stop(t *rapid.T) {
	mem := m.running(t)
	mem.fail = nil
	if failing := rapid.IntRange(0, 3).Draw(t, "failing transaction"); failing > 0 {
		mem.fail = make([]bool, failing)
		for i := range failing - 1 {
			mem.fail[i] = true
		}
	}
	mem.cancel()
	close(mem.queue)
	m.wrote = true
	if err := mem.w.run(mem.ctx); err != nil {
		t.Fatalf("member %s stopped with %v", mem.name, err)
	}
	m.end(mem)
}

// Kill kills a member: nothing in hand is written; after its session times out the group
// gives its partitions to nobody until an Assign. It starts again as a new process.
func (m *analyticsModel) Kill(t *rapid.T) {
	m.end(m.running(t))
}

// running draws a member that is running.
func (m *analyticsModel) running(t *rapid.T) *modelMember {
	mem := m.members[rapid.IntRange(0, len(m.members)-1).Draw(t, "member")]
	if mem == nil {
		t.Skip("the member is not running")
	}
	return mem
}

// Check is run after every step.
func (m *analyticsModel) Check(t *rapid.T) {
	for _, mem := range m.members {
		if mem != nil && mem.kafka.polls != mem.kafka.allowed {
			t.Fatalf("member %s: %d polls, %d allowed rebalances after them", mem.name, mem.kafka.polls, mem.kafka.allowed)
		}
	}
	if m.wrote { // nothing else changes the database
		m.checkCounted(t)
		m.wrote = false
	}
}

// checkCounted checks that the database holds each record counted once if it is before its
// partition's stored offset, and not at all if it is after.
func (m *analyticsModel) checkCounted(t *rapid.T) {
	ctx := context.Background()
	stored, err := m.reader.Offsets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	counted := map[string]int64{} // by platform and hour: by partition and offset
	err = m.reader.View(ctx, func(v *store.View) error {
		r := store.Range{From: hour0, To: hour0.Add(modelOffsets * time.Hour)}
		return v.EachHour(ctx, r, func(h *store.PlatformHour) error {
			counted[modelCell(h.Platform, h.Hour)] = h.Published + h.Failed + h.TokenExpired + h.Retries
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	for p := range int32(modelPartitions) {
		next := stored[store.TP{Topic: modelTopic, Partition: p}]
		for o := range int64(modelOffsets) {
			cell := modelCell(modelPlatform(p), hour0.Add(time.Duration(o)*time.Hour))
			want := int64(0)
			if o < next && !m.markers[p][o] && modelCountable(o) {
				want = 1
			}
			if counted[cell] != want {
				t.Fatalf("partition %d, offset %d: counted %d times, want %d (stored offset %d)", p, o, counted[cell], want, next)
			}
			delete(counted, cell)
		}
	}
	if len(counted) > 0 {
		t.Fatalf("counted what no record holds: %v", counted)
	}
}

// drain ends a sequence: every member dies, a new one takes every partition, polls and
// writes until nothing is left, and every record counts once.
func (m *analyticsModel) drain(t *rapid.T) {
	for _, mem := range m.members {
		if mem != nil {
			m.end(mem)
		}
	}
	mem := m.alive(t, 0)
	mem.s.maxBatch = modelPartitions * modelOffsets // in one batch: spares transactions
	for p := range int32(modelPartitions) {
		m.give(t, mem, p)
	}
	for _, p := range m.ready(mem) {
		mem.kafka.next = kgo.Fetches{{Topics: []kgo.FetchTopic{{Topic: modelTopic, Partitions: []kgo.FetchPartition{m.fetch(mem, p, modelOffsets)}}}}}
		if !mem.s.pollOnce(mem.ctx, mem.queue) {
			t.Fatal("the poll did not reach the writer")
		}
	}
	for mem.w.batch != nil || mem.w.held != nil || len(mem.queue) > 0 {
		if mem.w.batch == nil {
			mem.w.gather(false)
		}
		if err := mem.w.attempt(mem.ctx); err != nil {
			t.Fatalf("draining: %v", err)
		}
	}
	stored, err := m.reader.Offsets(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for p := range int32(modelPartitions) {
		end := lastRecord(m.markers[p]) + 1
		if got := stored[store.TP{Topic: modelTopic, Partition: p}]; got != end {
			t.Fatalf("partition %d: stored offset %d after draining, want %d", p, got, end)
		}
	}
	m.checkCounted(t)
}

// lastRecord is the offset of a log's last record, -1 if it has none.
func lastRecord(markers []bool) int64 {
	for o := len(markers) - 1; o >= 0; o-- {
		if !markers[o] {
			return int64(o)
		}
	}
	return -1
}

func modelPlatform(p int32) string { return fmt.Sprintf("p%d", p) }

func modelCell(platform string, hour time.Time) string {
	return platform + hour.Format(" 2006-01-02T15")
}

// modelCountable reports whether the record at offset counts (every seventh can never be
// decoded: it counts nothing, but moves the offset).
func modelCountable(offset int64) bool { return offset%7 != 3 }

// modelValues are the values of the records of the model's logs, by partition and offset:
// an event of platform p<partition> that occurred in hour hour0+offset, of the four counted
// types in turn, or bytes that never decode.
var modelValues = sync.OnceValue(func() [][][]byte {
	enc, err := schemas.NewSingleObject()
	if err != nil {
		panic(err)
	}
	types := []string{event.PostPublished, event.PostFailed, event.PostTokenExpired, event.PostRetry}
	out := make([][][]byte, modelPartitions)
	for p := range out {
		for o := range modelOffsets {
			if !modelCountable(int64(o)) {
				out[p] = append(out[p], []byte("not avro"))
				continue
			}
			at := hour0.Add(time.Duration(o)*time.Hour + time.Minute)
			ev := event.Event{ID: fmt.Sprintf("evt_%d_%d", p, o), Type: types[o%len(types)], Source: "model", Provider: "model",
				OccurredAt: at, ReceivedAt: at, Platform: ptr(modelPlatform(int32(p))), ProfileName: ptr("main"), Raw: []byte("{}")}
			switch ev.Type {
			case event.PostPublished:
				ev.PublishedAt = ptr(at)
			case event.PostFailed:
				ev.ErrorCode = ptr("rate_limited")
			case event.PostRetry:
				ev.Attempt = ptr(int32(2))
			}
			v, err := enc.Encode(nil, &ev)
			if err != nil {
				panic(err)
			}
			out[p] = append(out[p], v)
		}
	}
	return out
})

// modelDir is a temporary folder for the model's databases, in memory (/dev/shm) where
// there is one: creating, syncing and removing a few thousand SQLite files on a disk takes
// minutes.
func modelDir(t *testing.T) string {
	dir, err := os.MkdirTemp("/dev/shm", "analytics-model-")
	if err != nil {
		return t.TempDir()
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// removeDatabase removes an SQLite database and the files beside it.
func removeDatabase(path string) {
	for _, suffix := range []string{"", "-wal", "-shm"} {
		_ = os.Remove(path + suffix)
	}
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o600)
}

// checksNotGiven reports whether the run says no number of rapid checks (-rapid.checks,
// RAPID_CHECKS).
func checksNotGiven() bool {
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == "rapid.checks" })
	_, env := os.LookupEnv("RAPID_CHECKS")
	return !given && !env
}

// setChecks has the rapid checks of the test run n sequences.
func setChecks(t *testing.T, n int) {
	f := flag.Lookup("rapid.checks")
	old := f.Value.String()
	if err := f.Value.Set(strconv.Itoa(n)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Value.Set(old) })
}

var modelReader = sync.OnceValue(func() *schemas.Reader {
	r, err := consumers.NewReader(config.SchemaRegistry{})
	if err != nil {
		panic(err)
	}
	return r
})
