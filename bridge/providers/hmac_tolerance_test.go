package providers_test

import (
	"testing"
	"time"

	"github.com/socialbridge/bridge/bridge/failure"
	"github.com/socialbridge/bridge/bridge/providers"
)

// TestHMACDefaultTolerance checks the replay window of an hmac scheme that sets no
// hmac.tolerance: five minutes, the default docs/configuration.md gives.
func TestHMACDefaultTolerance(t *testing.T) {
	scheme := stripeScheme
	scheme.Tolerance = 0
	p := hmacPreset(t, scheme)
	body, h := sample(t, "hmac", "stripe_payment_intent")
	right := []*providers.Key{mustKey(t, p, stripeSecret)}
	checkFailure(t, p.Verify(h, body, right, stripeNow.Add(5*time.Minute)), failure.Unauthorized, "")
	checkFailure(t, p.Verify(h, body, right, stripeNow.Add(5*time.Minute+time.Second)), failure.Unauthorized,
		"Stripe-Signature too old: more than 5m0s before now")
}
