package retries_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/consumers/internal/grouptest"
	"github.com/socialbridge/bridge/consumers/retries"
	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/internal/kafkatest"
	"github.com/socialbridge/bridge/internal/testkit"
)

// TestLongRebalanceKeepsTheMember: a member with an instance_id that stops for good does
// not leave the group (a scale-down of static members), so a rebalance that a new
// member's join starts meanwhile lasts until the stopped member's session (45 s) times
// out. A batch of the running member in flight then cannot end before the rebalance is
// over, and its transaction (20 s here) times out meanwhile. The member must go on: its
// batch is handled again. Found by the chaos run (consumers/chaos); it failed twice
// before the fixes: the member stopped with "end transaction: context deadline exceeded"
// (the batch's end gave up after 30 s), then, with that fixed, with "unable to commit
// transaction offsets: … INVALID_PRODUCER_EPOCH" (the broker had aborted the
// transaction). Every record is called ok, moved to the first retry topic at most once (a
// batch handled again calls again, and the second call succeeds), and the members run
// until they are stopped.
func TestLongRebalanceKeepsTheMember(t *testing.T) {
	brokers, prefix := kafkatest.Brokers(t), kafkatest.Prefix(t)
	p := newProvider(t, func(_ string, n int, w http.ResponseWriter) {
		time.Sleep(300 * time.Millisecond) // the members are nearly always inside a batch
		if n == 1 {
			w.WriteHeader(http.StatusServiceUnavailable) // a move: the batch's transaction writes
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	yaml := config(brokers, prefix, p.srv.URL)
	member := func(id string) (stop func() error) {
		cfg := grouptest.Parse(t, strings.Replace(yaml, `instance_id: "only"`, fmt.Sprintf("instance_id: %q", id), 1))
		return grouptest.Run(t, cfg, retries.Run)
	}
	var n atomic.Int32
	produce := func() { // a record on each partition
		for part := range int32(grouptest.Partitions) {
			grouptest.Produce(t, brokers, prefix, part, failed(fmt.Sprintf("evt_reb_%03d", n.Add(1)), nil))
		}
	}
	called := func() bool { // ok: at the second call
		for i := range n.Load() {
			if len(p.of(fmt.Sprintf("evt_reb_%03d", i+1))) < 2 {
				return false
			}
		}
		return true
	}
	first, second := member("one"), member("two")
	waitMembers(t, brokers, grouptest.Parse(t, yaml).Consumers.Retries.Group, 2)
	produce()
	testkit.Eventually(t, 90*time.Second, "the first record called", called)

	if err := second(); err != nil {
		t.Fatalf("the second member: %v", err)
	}
	third := member("three")
	// Records keep coming while the rebalance waits for the second member's session, so
	// that the first member has batches in flight meanwhile. A member that stopped on its
	// own meanwhile returns its error from stop.
	for end := time.Now().Add(50 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		produce()
	}
	testkit.Eventually(t, 2*time.Minute, "every record called ok", called)
	for name, stop := range map[string]func() error{"first": first, "third": third} {
		if err := stop(); err != nil {
			t.Errorf("the %s member: %v", name, err)
		}
	}
	moved := map[string]int{}
	for _, r := range kafkatest.ReadCommitted(t, brokers, event.RetryTopic(prefix, 1), int(n.Load()), 2*time.Second, time.Minute) {
		moved[string(r.Key)]++
	}
	for i := range n.Load() {
		if id := fmt.Sprintf("evt_reb_%03d", i+1); moved[id] > 1 {
			t.Errorf("%s is in the first retry topic %d times, want at most once", id, moved[id])
		}
	}
}

// waitMembers waits until group is stable with n members.
func waitMembers(t *testing.T, brokers []string, group string, n int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	testkit.Eventually(t, 90*time.Second, fmt.Sprintf("%s stable with %d members", group, n), func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		gs, err := kadm.NewClient(cl).DescribeGroups(ctx, group)
		if err != nil {
			return false
		}
		g := gs[group]
		return g.Err == nil && g.State == "Stable" && len(g.Members) == n
	})
}
