package consumers

import (
	"testing"
	"time"
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
