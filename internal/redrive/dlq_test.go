package redrive

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/consumers/retries"
	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/internal/kafkatest"
)

// seedDLQ writes, in committed transactions, records of the dead-letter topic for ids with
// codes (partition i%2), plus one aborted record that no listing may show; it returns the
// records written, in order.
func seedDLQ(t *testing.T, brokers []string, prefix string, ids, codes []string) []*kgo.Record {
	t.Helper()
	createTopics(t, brokers, event.DLQTopic(prefix))
	var rs []*kgo.Record
	for i, id := range ids {
		rs = append(rs, dlqRecord(t, prefix, int32(i%2), failedPost(id, codes[i]), 4, int64(100+i)))
	}
	produceTxn(t, brokers, true, rs...)
	produceTxn(t, brokers, false, dlqRecord(t, prefix, 0, failedPost("evt_aborted", "rate_limited"), 4, 1))
	return rs
}

func newTestDLQ(t *testing.T, brokers []string, prefix string) *DLQ {
	t.Helper()
	d, err := NewDLQ(testConfig(t, brokers, prefix), discardLog())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestDLQList: the listing has each committed record once with the contract's fields, none
// of an aborted transaction, filters by id, error code (any case) and age, and tells the
// records redriven from the others.
func TestDLQList(t *testing.T) {
	brokers, prefix := kafkatest.Brokers(t), kafkatest.Prefix(t)
	seedDLQ(t, brokers, prefix, []string{"evt_a", "evt_b", "evt_c"}, []string{"rate_limited", "", "invalid_media"})
	d := newTestDLQ(t, brokers, prefix)
	ctx := context.Background()
	es, err := d.List(ctx, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 3 {
		t.Fatalf("listed %d records, want 3: %+v", len(es), es)
	}
	a := es[0] // partition 0, offset 0
	switch {
	case a.EventID != "evt_a" || a.Error == nil || *a.Error != "rate_limited":
		t.Errorf("first entry %+v, want evt_a with error rate_limited", a)
	case a.Attempts == nil || *a.Attempts != 4 || a.OriginTopic != prefix+"post.failed" || a.OriginOffset == nil || *a.OriginOffset != 100:
		t.Errorf("first entry's attempts and origin: %+v", a)
	case a.DLQPartition != 0 || a.DLQOffset != 0 || a.Redriven || time.Since(a.DeadLetteredAt) > time.Hour:
		t.Errorf("first entry's place: %+v", a)
	}
	if es[1].EventID != "evt_c" || es[2].EventID != "evt_b" || es[2].Error != nil {
		t.Errorf("entries in order of partition and offset: %s, %s; want evt_c then evt_b (no error code)", es[1].EventID, es[2].EventID)
	}
	for _, c := range []struct {
		f    Filter
		want int
	}{
		{Filter{IDs: []string{"evt_b", "evt_c"}}, 2},
		{Filter{Error: "RATE_LIMITED"}, 1},
		{Filter{Error: "nope"}, 0},
		{Filter{Since: time.Hour}, 3},
	} {
		if got, err := d.List(ctx, c.f); err != nil || len(got) != c.want {
			t.Errorf("List(%+v) = %d records, %v; want %d", c.f, len(got), err, c.want)
		}
	}
	d.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	if got, _ := d.List(ctx, Filter{Since: time.Hour}); len(got) != 0 {
		t.Errorf("--since 1h two hours later listed %d records, want 0", len(got))
	}
}

// TestRedrive: a redrive of one id moves that record to the first retry topic, due at
// once, with the retries headers it had and the offset it came from; listing shows it
// redriven; redriving everything then moves the others and skips it; a third run skips
// all; an unknown id is refused before anything moves; a dry run moves nothing.
func TestRedrive(t *testing.T) {
	brokers, prefix := kafkatest.Brokers(t), kafkatest.Prefix(t)
	seeded := seedDLQ(t, brokers, prefix, []string{"evt_a", "evt_b", "evt_c"}, []string{"rate_limited", "", "invalid_media"})
	d := newTestDLQ(t, brokers, prefix)
	ctx := context.Background()

	if _, _, err := d.Redrive(ctx, Filter{IDs: []string{"evt_a", "evt_nope"}}, false); err == nil {
		t.Fatal("a redrive naming an id the topic lacks succeeded")
	}
	res, steps, err := d.Redrive(ctx, Filter{}, true)
	if err != nil || res != (Result{}) || len(steps) != 3 || steps[0].Action != "redrive" {
		t.Fatalf("dry run: %+v %+v %v; want 3 steps to redrive, nothing counted", res, steps, err)
	}
	before := time.Now()
	if res, _, err = d.Redrive(ctx, Filter{IDs: []string{"evt_a"}}, false); err != nil || res != (Result{Redriven: 1}) {
		t.Fatalf("redrive evt_a: %+v, %v", res, err)
	}
	moved := readTopic(t, brokers, event.RetryTopic(prefix, 1))
	if len(moved) != 1 {
		t.Fatalf("the retry topic holds %d records, want 1 (the dry run and the refused run moved nothing)", len(moved))
	}
	m := moved[0]
	if string(m.Key) != "evt_a" || string(m.Value) != string(seeded[0].Value) {
		t.Errorf("moved record key %q, value changed: %v", m.Key, string(m.Value) != string(seeded[0].Value))
	}
	due, err := time.Parse(time.RFC3339Nano, kafkatest.Header(m, retries.HeaderDueAt))
	if err != nil || due.Before(before.Add(-time.Second)) || due.After(time.Now()) {
		t.Errorf("retry-due-at %q: want the time of the redrive", kafkatest.Header(m, retries.HeaderDueAt))
	}
	for k, want := range map[string]string{HeaderRedrivenFromOffset: "0", HeaderRedrivenFromPartition: "0",
		retries.HeaderOriginOffset: "100", retries.HeaderAttempt: "4"} {
		if got := kafkatest.Header(m, k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	es, _ := d.List(ctx, Filter{})
	if !es[0].Redriven || es[1].Redriven || es[2].Redriven {
		t.Errorf("after redriving evt_a, listed redriven: %v %v %v", es[0].Redriven, es[1].Redriven, es[2].Redriven)
	}
	if res, _, err = d.Redrive(ctx, Filter{}, false); err != nil || res != (Result{Redriven: 2, Skipped: 1}) {
		t.Fatalf("redrive --all: %+v, %v; want 2 redriven, 1 skipped", res, err)
	}
	if res, _, err = d.Redrive(ctx, Filter{}, false); err != nil || res != (Result{Skipped: 3}) {
		t.Fatalf("redrive --all again: %+v, %v; want 3 skipped", res, err)
	}
	assertOnce(t, brokers, prefix, 3)
	if s, err := d.Summary(ctx); err != nil || s.Records != 3 || s.Redriven != 3 || s.ByError[0] != (Count{"", 1, 1}) {
		t.Errorf("Summary after redriving all: %+v, %v", s, err)
	}
}

// assertOnce checks that the first retry topic holds, committed, exactly one move of each
// of the n records of the dead-letter topic, and the marks topic one mark each.
func assertOnce(t *testing.T, brokers []string, prefix string, n int) {
	t.Helper()
	seen := map[string]int{}
	for _, r := range readTopic(t, brokers, event.RetryTopic(prefix, 1)) {
		seen[kafkatest.Header(r, HeaderRedrivenFromPartition)+"/"+kafkatest.Header(r, HeaderRedrivenFromOffset)]++
	}
	for k, c := range seen {
		if c != 1 {
			t.Errorf("dead-letter record %s moved %d times", k, c)
		}
	}
	if len(seen) != n {
		t.Errorf("%d dead-letter records moved, want %d", len(seen), n)
	}
	marks := map[string]int{}
	for _, r := range readTopic(t, brokers, RedrivenTopic(prefix)) {
		marks[string(r.Key)]++
	}
	if len(marks) != n {
		t.Errorf("%d records marked redriven, want %d", len(marks), n)
	}
}

// TestRedriveFencesAnEarlierRun: run A reads the marks, then, before it moves anything, run
// B takes the transactional id and redrives everything. A must then fail and move nothing:
// it read the marks before B's, and committing would move each record a second time.
func TestRedriveFencesAnEarlierRun(t *testing.T) {
	brokers, prefix := kafkatest.Brokers(t), kafkatest.Prefix(t)
	ids := []string{"evt_1", "evt_2", "evt_3", "evt_4"}
	seedDLQ(t, brokers, prefix, ids, []string{"", "", "", ""})
	read, release := make(chan struct{}), make(chan struct{})
	first := true
	testHookAfterRead = func() {
		if first { // only A's, which runs first; B passes
			first = false
			close(read)
			<-release
		}
	}
	t.Cleanup(func() { testHookAfterRead = nil })
	ctx := context.Background()
	type outcome struct {
		res Result
		err error
	}
	aDone := make(chan outcome)
	go func() {
		res, _, err := newTestDLQ(t, brokers, prefix).Redrive(ctx, Filter{}, false)
		aDone <- outcome{res, err}
	}()
	<-read
	res, _, err := newTestDLQ(t, brokers, prefix).Redrive(ctx, Filter{}, false)
	if err != nil || res.Redriven != len(ids) {
		t.Fatalf("run B: %+v, %v; want all %d redriven", res, err, len(ids))
	}
	close(release)
	a := <-aDone
	if !errors.Is(a.err, ErrTakenOver) || a.res.Redriven != 0 {
		t.Errorf("run A after B took over: %+v, %v; want ErrTakenOver and nothing redriven", a.res, a.err)
	}
	assertOnce(t, brokers, prefix, len(ids))
}

// TestRedriveBatches: with a batch smaller than the records, every record is moved once,
// in several transactions.
func TestRedriveBatches(t *testing.T) {
	brokers, prefix := kafkatest.Brokers(t), kafkatest.Prefix(t)
	var ids, codes []string
	for i := range 25 {
		ids, codes = append(ids, "evt_"+strconv.Itoa(i)), append(codes, "timeout")
	}
	seedDLQ(t, brokers, prefix, ids, codes)
	d := newTestDLQ(t, brokers, prefix)
	d.batch = 7
	if res, _, err := d.Redrive(context.Background(), Filter{}, false); err != nil || res.Redriven != 25 {
		t.Fatalf("redrive: %+v, %v", res, err)
	}
	assertOnce(t, brokers, prefix, 25)
}
