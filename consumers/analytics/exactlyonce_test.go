package analytics

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/socialbridge/bridge/consumers/analytics/internal/dbtest"
	"github.com/socialbridge/bridge/consumers/analytics/store"
	"github.com/socialbridge/bridge/event"
)

// TestExactlyOnceAfterKill SIGKILLs a consumer inside a batch's transaction (its aggregates
// and offsets written, not committed), then checks that the database holds exactly the
// records before its offsets, and, after a new consumer finishes, exactly every record.
func TestExactlyOnceAfterKill(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, database string) {
		k := newTestKafka(t)
		events := knownEvents(3000, 12, 2)
		placed := k.produce(t, events, 5)
		ends := k.ends(t)
		s := openStore(t, database)

		blocking := k.child(database, 100)
		blocking.BlockAtBatch = 6
		first := startChild(t, "first", blocking)
		first.waitLine(t, "in-transaction")
		first.kill(t)

		offs, err := s.Offsets(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		var before []event.Event
		for _, p := range placed {
			if p.offset < offs[p.tp] {
				before = append(before, *p.ev)
			}
		}
		if len(before) == 0 || len(before) == len(events) {
			t.Fatalf("killed after %d of %d events were counted: want the kill mid-stream", len(before), len(events))
		}
		t.Logf("killed with %d of %d events counted", len(before), len(events))
		checkStore(t, s, expect(before))

		second := startChild(t, "second", k.child(database, 100))
		waitCounted(t, s, ends)
		second.stop(t)
		checkStore(t, s, expect(events))
	})
}

// TestExactlyOnceWhenASecondConsumerJoins starts a second consumer while the first is
// counting and records keep coming: the group gives it half the partitions, each starting
// from the database's offsets, and every record counts once.
func TestExactlyOnceWhenASecondConsumerJoins(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, database string) {
		k := newTestKafka(t)
		events := knownEvents(2000, 12, 3)
		k.produce(t, events, 0)
		s := openStore(t, database)

		slow := k.child(database, 50)
		slow.CommitDelay = 50 * time.Millisecond // batches in flight when partitions move
		first := startChild(t, "first", slow)
		waitSomeCounted(t, s)
		second := startChild(t, "second", slow)
		more := knownEvents(2000, 12, 4) // arriving while the group rebalances
		k.produce(t, more, 0)
		waitBalanced(t, k, 2)
		last := knownEvents(1000, 12, 5) // arriving when each has its half
		k.produce(t, last, 0)
		waitCounted(t, s, k.ends(t))

		firstN, secondN := metricsOf(t, first), metricsOf(t, second)
		t.Logf("first consumer: %v; second: %v", firstN, secondN)
		if secondN["records counted"] == 0 {
			t.Error("the second consumer counted nothing")
		}
		first.stop(t)
		second.stop(t)
		checkStore(t, s, expect(append(append(events, more...), last...)))
	})
}

func waitSomeCounted(t *testing.T, s *store.Store) {
	t.Helper()
	for deadline := time.Now().Add(3 * time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		offs, err := s.Offsets(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if len(offs) > 0 {
			return
		}
	}
	t.Fatal("nothing counted within 3 minutes")
}

// waitBalanced waits until the group has members members, each assigned the same number of
// partitions.
func waitBalanced(t *testing.T, k *testKafka, members int) {
	t.Helper()
	adm := kadm.NewClient(k.client)
	group := k.config("").Consumers.Analytics.Group
	var last []int
	for deadline := time.Now().Add(3 * time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		described, err := adm.DescribeGroups(ctx, group)
		cancel()
		if err != nil {
			continue
		}
		last = last[:0]
		for _, m := range described[group].Members {
			n := 0
			if a, ok := m.Assigned.AsConsumer(); ok {
				for _, tp := range a.Topics {
					n += len(tp.Partitions)
				}
			}
			last = append(last, n)
		}
		if len(last) == members && described[group].State == "Stable" && evenly(last, len(Types)*testPartitions) {
			t.Logf("group balanced: partitions per member %v", last)
			return
		}
	}
	t.Fatalf("group not balanced over %d members within 3 minutes: partitions per member %v", members, last)
}

func evenly(perMember []int, total int) bool {
	for _, n := range perMember {
		if n != total/len(perMember) {
			return false
		}
	}
	return true
}

var counterLine = regexp.MustCompile(`(?m)^bridge_consumer_(processed|transactions)_total\{[^}]*outcome="(\w+)"[^}]*\} (\d+)`)

// metricsOf reads a child's counters of records (over all topics) and transactions from its
// /metrics, as "records counted", "transactions aborted" and so on.
func metricsOf(t *testing.T, ch *child) map[string]int {
	t.Helper()
	resp, err := http.Get("http://" + ch.addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	out := map[string]int{}
	for _, m := range counterLine.FindAllSubmatch(body, -1) {
		n, _ := strconv.Atoi(string(m[3]))
		what := map[string]string{"processed": "records", "transactions": "transactions"}[string(m[1])]
		out[what+" "+string(m[2])] += n
	}
	return out
}
