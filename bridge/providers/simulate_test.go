package providers_test

import (
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/socialbridge/bridge/bridge/providers"
	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/internal/sender"
)

// header adapts an http.Header to providers.Headers.
type header http.Header

func (h header) Peek(key string) []byte { return []byte(http.Header(h).Get(key)) }

// simulationSecrets holds, per preset, a secret its Key accepts.
var simulationSecrets = map[string]string{
	"ayrshare":          ayrSecret,
	"codivupload":       "cdv_whsec_3b9c1f7a2e5d8b6c4a1f0e9d8c7b6a5f",
	"hmac":              githubSecret,
	"meta":              metaSecret,
	"post-bridge":       "pb_live_simulated_key",
	"postiz":            urlToken,
	"standard-webhooks": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
	"upload-post":       urlToken,
	"x":                 xSecret,
}

// TestEveryPresetSimulates holds every registered preset to the Simulator contract: each
// type it lists is delivered signed, verifies under its secret, and normalizes to that type
// with a stable id that differs between events. Presets that take settings are built with
// testSettings.
func TestEveryPresetSimulates(t *testing.T) {
	now := time.Date(2026, 5, 8, 14, 0, 42, 0, time.UTC)
	for _, name := range providers.Names() {
		t.Run(name, func(t *testing.T) {
			p := mustNew(t, name)
			sim, ok := p.(providers.Simulator)
			if !ok {
				t.Fatalf("preset %s does not implement providers.Simulator: `bridge simulate` cannot send its deliveries", name)
			}
			secret, ok := simulationSecrets[name]
			if !ok {
				t.Fatalf("no secret for %s in simulationSecrets", name)
			}
			key, err := p.Key(secret)
			if err != nil {
				t.Fatal(err)
			}
			if len(sim.Types()) == 0 {
				t.Fatal("Types lists nothing")
			}
			for i, typ := range sim.Types() {
				first := roundTrip(t, p, sim, key, secret, sender.SampleEvent(typ, "evt_a", now, i), now)
				again := roundTrip(t, p, sim, key, secret, sender.SampleEvent(typ, "evt_a", now, i), now)
				other := roundTrip(t, p, sim, key, secret, sender.SampleEvent(typ, "evt_b", now, i), now)
				if first.Type != typ || first.ID == "" {
					t.Errorf("%s: normalized to type %q id %q", typ, first.Type, first.ID)
				}
				if again.ID != first.ID || other.ID == first.ID {
					t.Errorf("%s: ids %q, %q (same event), %q (another event)", typ, first.ID, again.ID, other.ID)
				}
			}
		})
	}
}

func roundTrip(t *testing.T, p providers.Preset, sim providers.Simulator, key *providers.Key, secret string, ev *event.Event, now time.Time) event.Event {
	t.Helper()
	d, err := sim.Deliver(ev, secret, now)
	if err != nil {
		t.Fatalf("Deliver %s: %v", ev.Type, err)
	}
	if err := authenticate(p, d, key, now); err != nil {
		t.Fatalf("a simulated %s does not verify: %v", ev.Type, err)
	}
	var got event.Event
	if err := p.Normalize(header(d.Header), d.Body, &got); err != nil {
		t.Fatalf("a simulated %s does not normalize: %v\n%s", ev.Type, err, d.Body)
	}
	return got
}

// authenticate checks d as the ingress would: by the token of its path for an unsigned
// preset, by its signature for a signed one. A polled preset's deliveries are results it
// reads, not requests: there is nothing to check (TestOneProofEach holds it to no other).
func authenticate(p providers.Preset, d providers.Delivery, key *providers.Key, now time.Time) error {
	keys := []*providers.Key{key}
	if u, ok := p.(providers.Unsigned); ok {
		if u.VerifyToken(nil, keys) == nil {
			return fmt.Errorf("an unsigned preset verified a request without its token")
		}
		return u.VerifyToken([]byte(strings.TrimPrefix(d.Path, "/")), keys)
	}
	if _, ok := p.(providers.Poller); ok {
		return nil
	}
	if d.Path != "" {
		return fmt.Errorf("a signed preset's delivery has a path %q", d.Path)
	}
	return p.(providers.Signed).Verify(header(d.Header), d.Body, keys, now)
}

// TestCanonicalPresetsKeepEveryField checks that the presets whose bodies use the canonical
// field names give back exactly the event they rendered.
func TestCanonicalPresetsKeepEveryField(t *testing.T) {
	now := time.Date(2026, 5, 8, 14, 0, 42, 0, time.UTC)
	for _, name := range []string{"codivupload", "standard-webhooks", "hmac"} {
		p := mustNew(t, name)
		sim := p.(providers.Simulator)
		key, _ := p.Key(simulationSecrets[name])
		for i, typ := range sim.Types() {
			want := sender.SampleEvent(typ, "evt_"+name, now, i)
			got := roundTrip(t, p, sim, key, simulationSecrets[name], want, now)
			if !reflect.DeepEqual(&got, want) {
				t.Errorf("%s %s:\n got %+v\nwant %+v", name, typ, got, *want)
			}
		}
	}
}
