package retries_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/socialbridge/bridge/consumers/internal/grouptest"
	"github.com/socialbridge/bridge/consumers/retries"
	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/internal/kafkatest"
	"github.com/socialbridge/bridge/internal/testkit"
)

// TestMetricsCountCommittedMovesAndShowMarkersInLag: one event whose calls all fail goes
// through both retry topics to the DLQ; /metrics counts each move once, the dead-letter
// once with its reason, and, at rest, the lag of the input partition is 0 while that of a
// retry topic's partition is 1: the commit marker of the transaction that wrote the record
// sits after it, and the group's committed offset stops before the marker.
func TestMetricsCountCommittedMovesAndShowMarkersInLag(t *testing.T) {
	brokers, prefix := kafkatest.Brokers(t), kafkatest.Prefix(t)
	p := newProvider(t, status(http.StatusBadGateway))
	url := runMember(t, config(brokers, prefix, p.srv.URL))
	grouptest.AtZero(t, grouptest.Scrape(t, url), "bridge_consumer_dead_lettered_total", "reason",
		"undecodable", "permanent", "refused", "exhausted")
	ev := failed("evt_metrics", nil)
	grouptest.Produce(t, brokers, prefix, 1, ev)
	if rs := kafkatest.ReadCommitted(t, brokers, event.DLQTopic(prefix), 1, 0, 60*time.Second); len(rs) != 1 {
		t.Fatalf("DLQ: %d records, want 1", len(rs))
	}
	retry1, retry2, input := event.RetryTopic(prefix, 1), event.RetryTopic(prefix, 2), event.Topic(prefix, event.PostFailed)
	p1, p2 := partitionOf(t, brokers, retry1), partitionOf(t, brokers, retry2) // moves are keyed by event id
	kafkatest.WaitCommitted(t, brokers, prefix+"retries", retry2, p2, 1)

	var body string
	testkit.Eventually(t, 30*time.Second, "lag 0 on the input's partition and 1 on the retry topics' (markers)", func() bool {
		body = grouptest.Scrape(t, url)
		in, ok1 := grouptest.Metric(body, "bridge_consumer_lag", "topic", input, "partition", "1")
		r1, ok2 := grouptest.Metric(body, "bridge_consumer_lag", "topic", retry1, "partition", fmt.Sprint(p1))
		r2, ok3 := grouptest.Metric(body, "bridge_consumer_lag", "topic", retry2, "partition", fmt.Sprint(p2))
		return ok1 && ok2 && ok3 && in == 0 && r1 == 1 && r2 == 1
	})
	want := []struct {
		name   string
		labels []string
		value  float64
	}{
		{"bridge_consumer_moved_total", []string{"topic", retry1}, 1},
		{"bridge_consumer_moved_total", []string{"topic", retry2}, 1},
		{"bridge_consumer_moved_total", []string{"topic", event.DLQTopic(prefix)}, 1},
		{"bridge_consumer_dead_lettered_total", []string{"reason", "exhausted"}, 1},
		{"bridge_consumer_processed_total", []string{"topic", input, "outcome", "moved"}, 1},
		{"bridge_consumer_processed_total", []string{"topic", retry2, "outcome", "dead_lettered"}, 1},
		{"bridge_consumer_effect_seconds_count", []string{"outcome", "failed"}, 3},
	}
	for _, w := range want {
		if got, _ := grouptest.Metric(body, w.name, w.labels...); got != w.value {
			t.Errorf("%s%v = %g, want %g", w.name, w.labels, got, w.value)
		}
	}
	if got, _ := grouptest.Metric(body, "bridge_consumer_transactions_total", "outcome", "committed"); got < 3 {
		t.Errorf("committed transactions %g, want at least 3 (one per move)", got)
	}
	if !strings.Contains(body, `group="`+prefix+`retries"`) {
		t.Error("the metrics do not carry the group label")
	}
}

// TestLagIsExportedByItsOwnerOnly: with two members, each exports the lag of the partitions
// it owns and no other; together they export every partition of the group once.
func TestLagIsExportedByItsOwnerOnly(t *testing.T) {
	brokers, prefix := kafkatest.Brokers(t), kafkatest.Prefix(t)
	p := newProvider(t, status(http.StatusOK))
	all := 3 * grouptest.Partitions // the input topic and two retry topics
	a := runMember(t, strings.Replace(config(brokers, prefix, p.srv.URL), `instance_id: "only"`, `instance_id: "a"`, 1))
	testkit.Eventually(t, 60*time.Second, fmt.Sprintf("the only member exporting %d partitions", all), func() bool {
		return len(lagSeries(grouptest.Scrape(t, a))) == all
	})
	b := runMember(t, strings.Replace(config(brokers, prefix, p.srv.URL), `instance_id: "only"`, `instance_id: "b"`, 1))
	var sa, sb map[string]bool
	testkit.Eventually(t, 90*time.Second, "two members exporting disjoint halves", func() bool {
		sa, sb = lagSeries(grouptest.Scrape(t, a)), lagSeries(grouptest.Scrape(t, b))
		if len(sa) == 0 || len(sb) == 0 || len(sa)+len(sb) != all {
			return false
		}
		for s := range sa {
			if sb[s] {
				return false
			}
		}
		return true
	})
	t.Logf("a exports %d partitions, b %d", len(sa), len(sb))
}

// partitionOf returns the partition of the one record of topic.
func partitionOf(t *testing.T, brokers []string, topic string) int32 {
	t.Helper()
	rs := kafkatest.ReadCommitted(t, brokers, topic, 1, 0, 30*time.Second)
	if len(rs) != 1 {
		t.Fatalf("%s: %d records, want 1", topic, len(rs))
	}
	return rs[0].Partition
}

// runMember runs a retries member in-process until the test ends, measuring its lag every
// 200 ms, and returns the URL of its /metrics.
func runMember(t *testing.T, yaml string) string {
	t.Helper()
	log, urls := grouptest.CatchAttr(testkit.Logger(t), "metrics")
	m, err := retries.New(t.Context(), grouptest.Parse(t, yaml), log, retries.Options{})
	if err != nil {
		t.Fatal(err)
	}
	m.LagEvery = 200 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("member: %v", err)
		}
	})
	select {
	case u := <-urls:
		return u
	case err := <-done:
		t.Fatalf("the member stopped before it served /metrics: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("the member did not log its /metrics address within 60s")
	}
	return ""
}

// lagSeries returns the topic/partition of each bridge_consumer_lag series in body.
func lagSeries(body string) map[string]bool {
	out := map[string]bool{}
	for _, line := range strings.Split(body, "\n") {
		if !strings.HasPrefix(line, "bridge_consumer_lag{") {
			continue
		}
		out[label(line, "topic")+"/"+label(line, "partition")] = true
	}
	return out
}

func label(series, name string) string {
	_, rest, ok := strings.Cut(series, name+`="`)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, `"`)
	return v
}
