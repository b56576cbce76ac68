package redrive

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/internal/kafkatest"
)

// seedMany writes n dead-letter records, in committed transactions of 50.
func seedMany(t *testing.T, brokers []string, prefix string, n int) {
	t.Helper()
	var ids, codes []string
	for i := range n {
		ids, codes = append(ids, fmt.Sprintf("evt_%03d", i)), append(codes, "timeout")
	}
	for i := 0; i < n; i += 50 {
		seedDLQ(t, brokers, prefix, ids[i:min(n, i+50)], codes[i:min(n, i+50)])
	}
}

func childEnv(brokers []string, prefix string, batch int, pause int) []string {
	return []string{envBrokers + "=" + strings.Join(brokers, ","), envPrefix + "=" + prefix,
		fmt.Sprintf("%s=%d", envBatch, batch), fmt.Sprintf("%s=%d", envPause, pause)}
}

// TestRedriveTwoProcessesAtOnce starts two redrive processes at the same moment over the
// same dead-letter topic, in small batches so that their runs overlap. Whichever way they
// interleave, each record is moved once; a process that the other took over exits with
// ErrTakenOver, and what the two report redriven adds up to the records.
func TestRedriveTwoProcessesAtOnce(t *testing.T) {
	brokers, prefix := kafkatest.Brokers(t), kafkatest.Prefix(t)
	const n = 300
	seedMany(t, brokers, prefix, n)
	if total := twoAtOnce(t, brokers, prefix, "redrive", func(r Result) int { return r.Redriven }); total != n {
		t.Errorf("the two runs report %d redriven, want %d", total, n)
	}
	assertOnce(t, brokers, prefix, n)
}

// TestRedriveKilledMidway SIGKILLs a redrive while its second batch's transaction is open
// (its moves and marks produced, not committed), then runs another: the first batch stays
// redriven, the open one is aborted at once by the new run's taking the id, and the new
// run redrives the rest: each record is in the retry topic once. Before the second run,
// the killed run's uncommitted moves are in the log, so the kill did land midway.
func TestRedriveKilledMidway(t *testing.T) {
	brokers, prefix := kafkatest.Brokers(t), kafkatest.Prefix(t)
	const n, batch = 40, 10
	seedMany(t, brokers, prefix, n)
	killMidwayAndRerun(t, brokers, prefix, "redrive", batch, event.RetryTopic(prefix, 1), Result{Redriven: n - batch, Skipped: batch})
	assertOnce(t, brokers, prefix, n)
}

// seedDeliveries quarantines n deliveries of distinct post.published events.
func seedDeliveries(t *testing.T, brokers []string, prefix string, n int) {
	t.Helper()
	var rs []*kgo.Record
	for i := range n {
		rs = append(rs, quarantined(prefix, int32(i%2), "codiv", "codivupload", codivBody("post.published", fmt.Sprintf("evt_%03d", i))))
	}
	produceAsIngress(t, brokers, rs...)
}

// assertReplayedOnce checks that post.published holds, committed, each of the n events once,
// and the marks topic one mark per delivery.
func assertReplayedOnce(t *testing.T, brokers []string, prefix string, n int) {
	t.Helper()
	seen := map[string]int{}
	for _, r := range readTopic(t, brokers, event.Topic(prefix, event.PostPublished)) {
		seen[string(r.Key)]++
	}
	for k, c := range seen {
		if c != 1 {
			t.Errorf("event %s produced %d times", k, c)
		}
	}
	if len(seen) != n {
		t.Errorf("%d events produced, want %d", len(seen), n)
	}
	marks := map[string]int{}
	for _, r := range readTopic(t, brokers, ReplayedTopic(prefix)) {
		marks[string(r.Key)]++
	}
	if len(marks) != n {
		t.Errorf("%d deliveries marked replayed, want %d", len(marks), n)
	}
}

// TestReplayTwoProcessesAtOnce: as TestRedriveTwoProcessesAtOnce, for quarantine replay.
func TestReplayTwoProcessesAtOnce(t *testing.T) {
	brokers, prefix := kafkatest.Brokers(t), kafkatest.Prefix(t)
	const n = 200
	seedDeliveries(t, brokers, prefix, n)
	if total := twoAtOnce(t, brokers, prefix, "replay", func(r ReplayResult) int { return r.Replayed }); total != n {
		t.Errorf("the two runs report %d replayed, want %d", total, n)
	}
	assertReplayedOnce(t, brokers, prefix, n)
}

// TestReplayKilledMidway: as TestRedriveKilledMidway, for quarantine replay. The rerun
// reads the event topic for dedup as well: the killed run's aborted events must not count
// there as accepted, or they would never be produced.
func TestReplayKilledMidway(t *testing.T) {
	brokers, prefix := kafkatest.Brokers(t), kafkatest.Prefix(t)
	const n, batch = 40, 10
	seedDeliveries(t, brokers, prefix, n)
	killMidwayAndRerun(t, brokers, prefix, "replay", batch, event.Topic(prefix, event.PostPublished), ReplayResult{Replayed: n - batch, Skipped: batch})
	assertReplayedOnce(t, brokers, prefix, n)
}

// twoAtOnce starts two children running command (redrive or replay) at the same moment, in
// batches of 10 so that their runs overlap, and returns what they report done (count of
// each one's result) added up. Each must exit 0, or exitTakenOver when the other took over.
func twoAtOnce[R any](t *testing.T, brokers []string, prefix, command string, count func(R) int) int {
	t.Helper()
	env := childEnv(brokers, prefix, 10, 0)
	a, b := startChild(t, command, env...), startChild(t, command, env...)
	total, takenOver := 0, 0
	for _, p := range []*proc{a, b} {
		var res R
		if err := json.Unmarshal([]byte(p.line(t)), &res); err != nil {
			t.Fatal(err)
		}
		switch code := p.wait(t); code {
		case 0:
		case exitTakenOver:
			takenOver++
		default:
			t.Fatalf("a %s exited %d", command, code)
		}
		total += count(res)
	}
	t.Logf("%s: done in all %d, runs taken over %d", command, total, takenOver)
	return total
}

// killMidwayAndRerun SIGKILLs a child running command (redrive or replay) in batches of
// batch while its second batch's transaction is open, checks that topic, where it
// produces, then holds the committed first batch and the open second one, and runs the
// command again to its end, which must print want and exit 0.
func killMidwayAndRerun[R comparable](t *testing.T, brokers []string, prefix, command string, batch int, topic string, want R) {
	t.Helper()
	p := startChild(t, command, childEnv(brokers, prefix, batch, 2)...)
	if l := p.line(t); l != "paused" {
		t.Fatalf("child said %q, want paused", l)
	}
	p.kill()
	if got := uncommitted(t, brokers, topic); got != 2*batch {
		t.Fatalf("%s holds %d records before the rerun, want %d (one committed batch, one open)", topic, got, 2*batch)
	}
	again := startChild(t, command, childEnv(brokers, prefix, batch, 0)...)
	var res R
	if err := json.Unmarshal([]byte(again.line(t)), &res); err != nil {
		t.Fatal(err)
	}
	if code := again.wait(t); code != 0 || res != want {
		t.Fatalf("the rerun: %+v, exit %d; want %+v", res, code, want)
	}
}
