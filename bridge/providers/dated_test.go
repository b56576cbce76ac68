package providers_test

import (
	"testing"
	"time"

	"github.com/socialbridge/bridge/bridge/providers"
	"github.com/socialbridge/bridge/internal/sender"
)

// TestSignedTimes reads the signed time of each dated preset's samples: the newest its body
// carries, or none.
func TestSignedTimes(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, c := range []struct {
		preset, body string
		want         time.Time
	}{
		{"codivupload", `{"event":"post.published","id":"e","timestamp":"2026-05-08T14:00:42Z","data":{}}`, at("2026-05-08T14:00:42Z")},
		{"codivupload", `{"event":"post.published","id":"e","data":{}}`, time.Time{}},
		{"codivupload", `{"event":"post.published","id":"e","timestamp":1767225600}`, time.Time{}},
		{"codivupload", `{"timestamp":"2026-05-08T14:00:42Z","data":{`, at("2026-05-08T14:00:42Z")}, // read up to it only
		{"codivupload", `{"id":"e","data":{"timestamp":"2026-05-08T14:00:42Z"}}`, time.Time{}},
		{"codivupload", `{"timestamp":`, time.Time{}},
		{"meta", `{"object":"page","entry":[{"id":"1","time":1767225600},{"id":"2","time":1767225601}]}`, time.Unix(1767225601, 0)},
		{"meta", `{"object":"page","entry":[{"id":"1"}]}`, time.Time{}},
		{"meta", `{"object":"page","entry":[{"id":"1","time":"soon"}]}`, time.Time{}},
		{"x", `{"for_user_id":"1","follow_events":[{"type":"follow","created_timestamp":"1767225600000"}]}`, time.UnixMilli(1767225600000)},
		{"x", `{"for_user_id":"1","tweet_create_events":[{"created_at":"Thu Jan 01 00:00:00 +0000 2026","timestamp_ms":"1767225601000"}]}`, time.UnixMilli(1767225601000)},
		{"x", `{"for_user_id":"1","tweet_create_events":[{"created_at":"Thu Jan 01 00:00:02 +0000 2026"}]}`, at("2026-01-01T00:00:02Z")},
		{"x", `{"user_event":{"revoke":{"date_time":"2026-01-01T00:00:00+00:00"}}}`, at("2026-01-01T00:00:00Z")},
		{"x", `{"for_user_id":"1","favorite_events":[{"timestamp_ms":1767225600000},{"timestamp_ms":1767225900000}]}`, time.UnixMilli(1767225900000)},
		{"x", `{"for_user_id":"1","follow_events":[{"type":"follow"}]}`, time.Time{}},
		{"x", `[]`, time.Time{}},
	} {
		d := mustNew(t, c.preset).(providers.Dated)
		got, ok := d.SignedTime([]byte(c.body))
		if ok != !c.want.IsZero() || !got.Equal(c.want) {
			t.Errorf("%s %s: %v %v, want %v", c.preset, c.body, got, ok, c.want)
		}
	}
}

// TestDatedSimulations checks that each dated preset's simulated delivery carries the time it
// was made at, as the provider's would: `bridge simulate` must pass the replay check.
func TestDatedSimulations(t *testing.T) {
	dated := 0
	for _, name := range providers.Names() {
		p := mustNew(t, name)
		d, ok := p.(providers.Dated)
		if !ok {
			continue
		}
		dated++
		sim := p.(providers.Simulator)
		for i, typ := range sim.Types() {
			del, err := sim.Deliver(sender.SampleEvent(typ, "evt_dated", fuzzNow, i), simulationSecrets[name], fuzzNow)
			if err != nil {
				t.Fatal(err)
			}
			if got, ok := d.SignedTime(del.Body); !ok || got.Sub(fuzzNow).Abs() > time.Second {
				t.Errorf("%s %s: signed time %v %v, want about %v", name, typ, got, ok, fuzzNow)
			}
		}
	}
	if dated != 3 {
		t.Errorf("%d dated presets, want 3 (codivupload, meta, x): update the docs of sources[].max_age", dated)
	}
}
