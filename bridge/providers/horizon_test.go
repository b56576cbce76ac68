package providers_test

import (
	"testing"
	"time"

	"github.com/socialbridge/bridge/bridge/providers"
)

// TestHorizon: the presets whose sender's retry schedule docs/providers.md gives report it (the
// Standard Webhooks schedule sums to 75 h 35 min); those whose sender's schedule is unknown
// (upload-post, the generic hmac, the polled post-bridge) report none.
func TestHorizon(t *testing.T) {
	schedule := []time.Duration{0, 5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour,
		5 * time.Hour, 10 * time.Hour, 14 * time.Hour, 20 * time.Hour, 24 * time.Hour}
	var last time.Duration
	for _, d := range schedule {
		last += d
	}
	for name, atLeast := range map[string]time.Duration{"standard-webhooks": last, "codivupload": 3 * time.Hour,
		"meta": 36 * time.Hour, "ayrshare": 35 * time.Second, "x": 5 * time.Minute, "postiz": 0} {
		p, _ := providers.Lookup(name)
		h, ok := providers.Horizon(p)
		if !ok || h < atLeast {
			t.Errorf("%s: horizon %v (known %v), want at least %v", name, h, ok, atLeast)
		}
	}
	for _, name := range []string{"upload-post", "hmac", "post-bridge"} {
		p, _ := providers.Lookup(name)
		if h, ok := providers.Horizon(p); ok {
			t.Errorf("%s: horizon %v, but its sender's retries are not known", name, h)
		}
	}
	if _, ok := providers.Horizon(nil); ok {
		t.Error("a preset without RetryHorizon has a horizon")
	}
}
