package ingress_test

import (
	"fmt"
	"testing"

	"github.com/socialbridge/bridge/bridge/failure"
	"github.com/socialbridge/bridge/bridge/ingress"
	"github.com/socialbridge/bridge/bridge/providers"
	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/internal/testkit"
)

// wrapping is CodivUpload with a Normalize that wraps its failure, as a preset may to add
// context: the kind is still Unnormalizable, found by errors.As.
type wrapping struct{ providers.CodivUpload }

func (wrapping) Normalize(providers.Headers, []byte, *event.Event) error {
	return fmt.Errorf("wrapped: %w", failure.New(failure.Unnormalizable, "no canonical type"))
}

// TestQuarantineReadsAWrappedReason: a wrapped Unnormalizable failure is quarantined with its
// reason, as KindOf reads its kind, not taken for another kind of error.
func TestQuarantineReadsAWrappedReason(t *testing.T) {
	srv := serve(t, func(o *ingress.Options) { o.Sources[0].Preset = wrapping{} })
	body := delivery("evt_wrapped")
	code, got := postTo(t, srv.addr, "/webhooks/codivupload", testkit.CodivHeaders(secret, "post.published", []byte(body)), body)
	if want := `{"status":"quarantined","reason":"no canonical type"}`; code != 202 || got != want {
		t.Fatalf("answered %d %s, want 202 %s", code, got, want)
	}
}
