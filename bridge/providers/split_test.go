package providers_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/socialbridge/bridge/bridge/failure"
	"github.com/socialbridge/bridge/bridge/providers"
	"github.com/socialbridge/bridge/event"
)

// splitDirs are the presets whose deliveries split, with cases under testdata/<name>/:
// the providers' samples (docs/providers.md), batches, and quarantine_* bodies that must be refused.
var splitDirs = []string{"ayrshare", "meta", "postiz", "upload-post", "x"}

// testSettings are the settings each preset is built with in these tests.
var testSettings = map[string]providers.Settings{
	"meta": {VerifyToken: "my-verify-token"},
	"hmac": {HMAC: &providers.HMACScheme{
		Header: "X-Signature", Prefix: "sha256=", Encoding: "hex", Signed: "{timestamp}.{body}",
		TimestampHeader: "X-Timestamp", ID: "json:id", Type: "json:type", Time: "json:timestamp", Data: "json:data",
	}},
}

func mustNew(t testing.TB, name string) providers.Preset {
	t.Helper()
	p, err := providers.New(name, testSettings[name])
	if err != nil {
		t.Fatalf("New(%s): %v", name, err)
	}
	return p
}

// mustSigned is mustNew for a preset whose provider signs its deliveries.
func mustSigned(t testing.TB, name string) providers.Signed {
	t.Helper()
	p, ok := mustNew(t, name).(providers.Signed)
	if !ok {
		t.Fatalf("%s is not Signed", name)
	}
	return p
}

// renderParts is what a split golden file holds: each part's event (its narrowed raw payload
// as text) or why it is ignored, or the failure of a quarantined body.
func renderParts(parts []providers.Part, err error) []byte {
	if err != nil {
		return render(nil, err)
	}
	type rendered struct {
		Ignored string       `json:",omitempty"`
		Event   *event.Event `json:",omitempty"`
		Raw     string       `json:",omitempty"`
	}
	out := make([]rendered, len(parts))
	for i, p := range parts {
		if p.Ignored != "" {
			out[i].Ignored = p.Ignored
			continue
		}
		ev := p.Event
		out[i].Raw, ev.Raw = string(ev.Raw), nil
		out[i].Event = &ev
	}
	b, _ := json.MarshalIndent(out, "", "  ")
	return append(b, '\n')
}

func TestSplitGolden(t *testing.T) {
	for _, dir := range splitDirs {
		sp, ok := mustNew(t, dir).(providers.Splitter)
		if !ok {
			t.Fatalf("%s is not a Splitter", dir)
		}
		inputs, _ := filepath.Glob(filepath.Join("testdata", dir, "*.json"))
		if len(inputs) == 0 {
			t.Fatalf("no inputs in testdata/%s", dir)
		}
		for _, in := range inputs {
			name := strings.TrimSuffix(filepath.Base(in), ".json")
			t.Run(dir+"/"+name, func(t *testing.T) {
				body, h := sample(t, dir, name)
				parts, err := sp.Split(h, body)
				if quarantined := strings.HasPrefix(name, "quarantine_"); quarantined != (err != nil) {
					t.Fatalf("err = %v, want an error: %t", err, quarantined)
				}
				if err != nil && failure.KindOf(err) != failure.Unnormalizable {
					t.Fatalf("err = %v, want kind Unnormalizable", err)
				}
				checkParts(t, parts)
				checkGolden(t, strings.TrimSuffix(in, ".json")+".golden", renderParts(parts, err))
			})
		}
	}
}

// checkParts holds parts to the Splitter contract: an event part has an id and a canonical
// type, an ignored one nothing else, and a narrowed raw payload is JSON.
func checkParts(t *testing.T, parts []providers.Part) {
	t.Helper()
	for i, p := range parts {
		switch {
		case p.Ignored != "" && (p.Event.ID != "" || p.Event.Type != ""):
			t.Errorf("part %d is ignored and yet has an event: %+v", i, p.Event)
		case p.Ignored == "" && (p.Event.ID == "" || !event.Known(p.Event.Type)):
			t.Errorf("part %d: id %q, type %q", i, p.Event.ID, p.Event.Type)
		case p.Event.Raw != nil && !json.Valid(p.Event.Raw):
			t.Errorf("part %d: narrowed raw payload is not JSON: %s", i, p.Event.Raw)
		case len(parts) == 1 && p.Event.Raw != nil:
			t.Errorf("the only part has a narrowed raw payload: the body is kept verbatim instead")
		}
	}
}

// TestSplitIDsFollowTheElement checks that an element keeps its event id whatever else its
// delivery carries, so that a redelivery batched differently is still deduplicated.
func TestSplitIDsFollowTheElement(t *testing.T) {
	meta := mustNew(t, "meta").(providers.Splitter)
	batch, h := sample(t, "meta", "batch_mixed")
	alone := []byte(`{"object":"page","entry":[{"id":"104923907983682","time":1767229999,"changes":[{"field":"feed","value":{"item":"comment","verb":"add","comment_id":"1_2","post_id":"104923907983682_1","message":"caf\u00e9 <3","created_time":1767225660,"from":{"id":"42","name":"Ann"}}}]}]}`)
	ids := func(body []byte) map[string]bool {
		parts, err := meta.Split(h, body)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]bool{}
		for _, p := range parts {
			m[p.Event.ID] = p.Ignored == ""
		}
		return m
	}
	batched, single := ids(batch), ids(alone)
	for id := range single {
		if !batched[id] {
			t.Fatalf("the comment's id %s alone is not among the batch's ids %v", id, batched)
		}
	}
}

// TestSplitterNormalizeWantsOneEvent checks that a Splitter's Normalize refuses a delivery
// of several events or none rather than dropping some.
func TestSplitterNormalizeWantsOneEvent(t *testing.T) {
	for _, c := range []struct{ preset, sample, reason string }{
		{"meta", "batch_mixed", "the delivery carries 5 events, not one"},
		{"postiz", "empty_list", "the delivery maps to no event: postiz sent an empty list: it names no post (gitroomhq/postiz-app#1861)"},
		{"x", "favorite_events", `the delivery maps to no event: x favorite_events are not mapped`},
	} {
		body, h := sample(t, c.preset, c.sample)
		var ev event.Event
		err := mustNew(t, c.preset).Normalize(h, body, &ev)
		checkFailure(t, err, failure.Unnormalizable, c.reason)
	}
	body, h := sample(t, "meta", "page_feed_post")
	ev := event.Event{Source: "src", Raw: body}
	if err := mustNew(t, "meta").Normalize(h, body, &ev); err != nil || ev.Type != event.PostPublished || ev.Source != "src" || ev.Raw == nil {
		t.Fatalf("Normalize of one change: %v, %+v", err, ev)
	}
}

func TestNewSettings(t *testing.T) {
	scheme := testSettings["hmac"].HMAC
	for _, c := range []struct {
		name string
		s    providers.Settings
		want string
	}{
		{"zapier", providers.Settings{}, `provider: unknown provider "zapier"`},
		{"codivupload", providers.Settings{VerifyToken: "t"}, "verify_token: only the meta preset takes it"},
		{"meta", providers.Settings{}, "verify_token: missing"},
		{"meta", providers.Settings{VerifyToken: "t", HMAC: scheme}, "hmac: only the hmac preset takes it"},
		{"hmac", providers.Settings{}, "hmac: missing"},
		{"hmac", providers.Settings{HMAC: scheme, VerifyToken: "t"}, "verify_token: only the meta preset takes it"},
		{"x", providers.Settings{HMAC: scheme}, "hmac: only the hmac preset takes it"},
	} {
		_, err := providers.New(c.name, c.s)
		se, ok := errors.AsType[*providers.SettingError](err)
		if !ok || !strings.HasPrefix(se.Error(), c.want) {
			t.Errorf("New(%s, %+v) = %v, want %q", c.name, c.s, err, c.want)
		}
	}
	for _, name := range providers.Names() {
		if _, err := providers.New(name, testSettings[name]); err != nil {
			t.Errorf("New(%s): %v", name, err)
		}
	}
}

// FuzzSplit checks that no body, however malformed, makes a Splitter panic, fail other than
// as Unnormalizable, or break the Splitter contract.
func FuzzSplit(f *testing.F) {
	for _, dir := range splitDirs {
		inputs, _ := filepath.Glob(filepath.Join("testdata", dir, "*.json"))
		for _, in := range inputs {
			body, _ := os.ReadFile(in)
			f.Add(body)
		}
	}
	for _, body := range trickyBodies {
		f.Add([]byte(body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, name := range append(splitDirs, "hmac") {
			parts, err := mustNew(t, name).(providers.Splitter).Split(headers{}, body)
			if err != nil {
				if fe, ok := errors.AsType[*failure.Error](err); !ok || fe.Kind != failure.Unnormalizable {
					t.Fatalf("%s: err = %#v, want a *failure.Error of kind Unnormalizable", name, err)
				}
				continue
			}
			if !json.Valid(body) {
				t.Fatalf("%s split a body that is not JSON", name)
			}
			checkParts(t, parts)
		}
	})
}
