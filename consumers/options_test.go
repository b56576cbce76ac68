package consumers_test

import (
	"regexp"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/consumers"
)

// TestTransactionalIDs: with an instance_id the transactional id is {group}-{instance},
// the same at every start; without, {group}- and a random suffix, another at each start.
func TestTransactionalIDs(t *testing.T) {
	if got := consumers.TransactionalID("g", "a"); got != "g-a" {
		t.Errorf("with instance a: %q, want g-a", got)
	}
	one, two := consumers.TransactionalID("g", ""), consumers.TransactionalID("g", "")
	if !regexp.MustCompile(`^g-[0-9a-f]{12}$`).MatchString(one) || one == two {
		t.Errorf("without an instance: %q and %q, want g- and two different random suffixes", one, two)
	}
}

// TestTransactOptions: a transactional member's client takes its instance_id as its static
// group instance id (none without one), its transactional id, the configured transaction
// timeout, and a rebalance timeout of the transaction timeout and 30 s more.
func TestTransactOptions(t *testing.T) {
	k := config.Default().Kafka
	k.Brokers = []string{"127.0.0.1:1"} // never dialled: the client connects on first use
	for _, instance := range []string{"i-1", ""} {
		m := config.Member{InstanceID: instance, TransactionTimeout: config.Duration(45 * time.Second)}
		if got := consumers.RebalanceTimeout(m); got != 75*time.Second {
			t.Errorf("RebalanceTimeout = %s, want 75s", got)
		}
		cl, err := kgo.NewClient(append(consumers.MemberOptions(k, "g", "t"), consumers.TransactOptions("g", m)...)...)
		if err != nil {
			t.Fatalf("instance %q: %v", instance, err)
		}
		defer cl.Close()
		if got, _ := cl.OptValue(kgo.InstanceID).(string); got != instance {
			t.Errorf("instance %q: static instance id %v", instance, got)
		}
		if got, _ := cl.OptValue(kgo.TransactionalID).(string); instance != "" && got != "g-"+instance || len(got) < len("g-") || got[:2] != "g-" {
			t.Errorf("instance %q: transactional id %q", instance, got)
		}
		if got := cl.OptValue(kgo.TransactionTimeout); got != 45*time.Second {
			t.Errorf("transaction timeout %v, want 45s", got)
		}
		if got := cl.OptValue(kgo.RebalanceTimeout); got != 75*time.Second {
			t.Errorf("rebalance timeout %v, want 75s", got)
		}
	}
}
