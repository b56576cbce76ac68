package consumers

import (
	"slices"
	"testing"
	"time"

	"github.com/socialbridge/bridge/config"
)

// TestMemberLagEvery: bridge_consumer_lag is measured every LagEvery, every 10 s when 0.
func TestMemberLagEvery(t *testing.T) {
	if got := (&Member{}).lagEvery(); got != 10*time.Second {
		t.Errorf("LagEvery 0: every %s, want 10s", got)
	}
	if got := (&Member{LagEvery: time.Second}).lagEvery(); got != time.Second {
		t.Errorf("LagEvery 1s: every %s", got)
	}
}

// TestMemberSessionRetryWait: after a failed transaction session the next waits 1 s, then
// twice the last wait at each failure in a row, never more than 30 s; a session that lasted
// more than a minute (not exactly one) starts the count again.
func TestMemberSessionRetryWait(t *testing.T) {
	var waits []time.Duration
	var last time.Duration
	for range 7 {
		last = retryWait(last, time.Second)
		waits = append(waits, last)
	}
	want := []time.Duration{1, 2, 4, 8, 16, 30, 30}
	for i := range want {
		want[i] *= time.Second
	}
	if !slices.Equal(waits, want) {
		t.Errorf("waits after failures in a row: %v, want %v", waits, want)
	}
	if got := retryWait(16*time.Second, time.Minute); got != 30*time.Second {
		t.Errorf("after a session of exactly a minute: %s, want 30s (doubled, capped)", got)
	}
	if got := retryWait(16*time.Second, time.Minute+time.Millisecond); got != time.Second {
		t.Errorf("after a session of more than a minute: %s, want 1s", got)
	}
}

// TestMemberEndTimeout: a member's Loop may take the rebalance timeout (the transaction
// timeout and 30 s) and 30 s more to end a transaction, since franz-go holds a batch's
// offset commit while the group rebalances.
func TestMemberEndTimeout(t *testing.T) {
	m := &Member{Config: config.Member{TransactionTimeout: config.Duration(20 * time.Second)}}
	if got := m.endTimeout(); got != 80*time.Second {
		t.Errorf("transaction timeout 20s: ending bounded by %s, want 80s", got)
	}
}
