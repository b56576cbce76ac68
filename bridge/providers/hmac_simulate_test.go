package providers_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/socialbridge/bridge/bridge/providers"
	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/internal/sender"
)

// TestHMACSimulatedBodyID checks when the hmac simulator adds the event id to the body: when
// the id (or type) comes from a header the signature does not cover, so that two events'
// bodies differ as a real sender's do; and never when the signature covers those headers,
// where the body is only what the scheme's locations put in it.
func TestHMACSimulatedBodyID(t *testing.T) {
	now := time.Unix(1767225600, 0)
	signedHeaders := githubScheme
	signedHeaders.Signed = "{header:X-GitHub-Delivery}.{header:X-GitHub-Event}.{body}"
	for _, tc := range []struct {
		name   string
		scheme providers.HMACScheme
		wantID bool
	}{
		{"id and type in unsigned headers", githubScheme, true},
		{"id and type in signed headers", signedHeaders, false},
	} {
		p, err := providers.New("hmac", providers.Settings{HMAC: &tc.scheme})
		if err != nil {
			t.Fatal(err)
		}
		ev := sender.SampleEvent(event.PostPublished, "evt_a", now, 0)
		d, err := p.(providers.Simulator).Deliver(ev, githubSecret, now)
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]any
		if err := json.Unmarshal(d.Body, &body); err != nil {
			t.Fatal(err)
		}
		id, has := body["id"]
		if has != tc.wantID || has && id != ev.ID {
			t.Errorf("%s: body id %v (present: %t), want present: %t, %q", tc.name, id, has, tc.wantID, ev.ID)
		}
	}
}

// TestHMACSimulatedSenderType checks that the simulator sends a type under the sender's name
// for it when hmac.types maps one to it, and under its canonical name otherwise.
func TestHMACSimulatedSenderType(t *testing.T) {
	now := time.Unix(1767225600, 0)
	p, err := providers.New("hmac", providers.Settings{HMAC: &stripeScheme})
	if err != nil {
		t.Fatal(err)
	}
	for canonical, want := range map[string]string{event.PostPublished: "payment_intent.succeeded", event.PostFailed: event.PostFailed} {
		d, err := p.(providers.Simulator).Deliver(sender.SampleEvent(canonical, "evt_a", now, 0), stripeSecret, now)
		if err != nil {
			t.Fatal(err)
		}
		var body struct{ Type string }
		if err := json.Unmarshal(d.Body, &body); err != nil || body.Type != want {
			t.Errorf("%s: body type %q (%v), want %q", canonical, body.Type, err, want)
		}
	}
}
