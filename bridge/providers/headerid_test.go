package providers_test

import (
	"strings"
	"testing"

	"github.com/socialbridge/bridge/bridge/failure"
	"github.com/socialbridge/bridge/bridge/providers"
	"github.com/socialbridge/bridge/event"
)

// headerIDPresets are preset configurations that take the event id from a header.
var headerIDPresets = map[string]struct {
	name     string
	settings providers.Settings
	header   string
}{
	"standard-webhooks": {"standard-webhooks", providers.Settings{}, "webhook-id"},
	"hmac, GitHub-like": {"hmac", providers.Settings{HMAC: &providers.HMACScheme{
		Header: "X-Hub-Signature-256", Prefix: "sha256=", ID: "header:X-GitHub-Delivery", Type: "json:type",
	}}, "X-GitHub-Delivery"},
}

// TestHeaderIDsMustBeUTF8 checks that an id header that is not UTF-8 is refused, not
// repaired: "\xff" and "\xfe" would both become U+FFFD, one id for two events, and the
// record's key and Avro string would hold bytes other readers refuse.
func TestHeaderIDsMustBeUTF8(t *testing.T) {
	body := []byte(`{"type":"post.published","data":{"post_id":"p_1"}}`)
	for what, c := range headerIDPresets {
		p, err := providers.New(c.name, c.settings)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		var ev event.Event
		if err := p.Normalize(headers{c.header: []byte("evt_1")}, body, &ev); err != nil || ev.ID != "evt_1" {
			t.Fatalf("%s: a UTF-8 id: %v, id %q", what, err, ev.ID)
		}
		for _, id := range []string{"evt_\xff", "evt_\xfe", "\xc3\x28"} {
			err := p.Normalize(headers{c.header: []byte(id)}, body, &ev)
			if failure.KindOf(err) != failure.Unnormalizable || !strings.Contains(err.Error(), "not UTF-8") {
				t.Errorf("%s: id %q: err = %v, want it quarantined as not UTF-8", what, id, err)
			}
		}
	}
}
