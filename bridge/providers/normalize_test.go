package providers_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/socialbridge/bridge/bridge/failure"
	"github.com/socialbridge/bridge/bridge/providers"
	"github.com/socialbridge/bridge/event"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/")

// presetDirs are the presets with normalization cases under testdata/<name>/.
var presetDirs = []string{"codivupload", "standard-webhooks"}

// render is what a golden file holds: the event, or the failure of a quarantined body.
func render(ev *event.Event, err error) []byte {
	var v any = ev
	if err != nil {
		fe, ok := errors.AsType[*failure.Error](err)
		if !ok {
			v = map[string]string{"error": err.Error()}
		} else {
			kind := "unnormalizable"
			if fe.Kind != failure.Unnormalizable {
				kind = "UNEXPECTED KIND"
			}
			v = map[string]string{"kind": kind, "reason": fe.Reason, "error": fe.Error()}
		}
	}
	out, _ := json.MarshalIndent(v, "", "  ")
	return append(out, '\n')
}

func TestNormalizeGolden(t *testing.T) {
	for _, dir := range presetDirs {
		p, ok := providers.Lookup(dir)
		if !ok {
			t.Fatalf("no preset %q", dir)
		}
		inputs, _ := filepath.Glob(filepath.Join("testdata", dir, "*.json"))
		if len(inputs) == 0 {
			t.Fatalf("no inputs in testdata/%s", dir)
		}
		for _, in := range inputs {
			name := strings.TrimSuffix(filepath.Base(in), ".json")
			t.Run(dir+"/"+name, func(t *testing.T) {
				body, h := sample(t, dir, name)
				var ev event.Event
				err := p.Normalize(h, body, &ev)
				if quarantined := strings.HasPrefix(name, "quarantine_"); quarantined != (err != nil) {
					t.Fatalf("err = %v, want an error: %t", err, quarantined)
				}
				if err != nil && failure.KindOf(err) != failure.Unnormalizable {
					t.Fatalf("err = %v, want kind Unnormalizable", err)
				}
				checkGolden(t, strings.TrimSuffix(in, ".json")+".golden", render(&ev, err))
			})
		}
	}
}

func checkGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run go test -update to accept):\n--- got\n%s--- want\n%s", path, got, want)
	}
}

func TestNormalizeResetsEvent(t *testing.T) {
	body, h := sample(t, "codivupload", "post_failed")
	stale := "stale"
	ev := event.Event{Source: "src", Provider: "codivupload", Raw: body, CommentID: &stale, Text: &stale}
	if err := (providers.CodivUpload{}).Normalize(h, body, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.CommentID != nil || ev.Text != nil || ev.Source != "src" || ev.Provider != "codivupload" || ev.Raw == nil {
		t.Fatalf("Normalize kept stale fields or dropped the caller's: %+v", ev)
	}
}

// TestNormalizeKeepsNoHeaderBuffer checks that the event does not alias the request's
// buffers, which servers reuse.
func TestNormalizeKeepsNoHeaderBuffer(t *testing.T) {
	body, h := sample(t, "standard-webhooks", "post_failed")
	var ev event.Event
	if err := (providers.StandardWebhooks{}).Normalize(h, body, &ev); err != nil {
		t.Fatal(err)
	}
	copy(h.Peek("webhook-id"), "XXXXXXXX")
	for i := range body {
		body[i] = 'X'
	}
	if ev.ID != "msg_test" || *ev.PostID != "p_2" {
		t.Fatalf("event changed with its request's buffers: %q %q", ev.ID, *ev.PostID)
	}
}

// stringFields are the Event's string fields, by their canonical names.
func stringFields(ev *event.Event) map[string]*string {
	return map[string]*string{
		"post_id": ev.PostID, "profile_name": ev.ProfileName, "platform": ev.Platform,
		"platform_post_id": ev.PlatformPostID, "platform_post_url": ev.PlatformPostURL,
		"error_code": ev.ErrorCode, "error_message": ev.ErrorMessage, "reconnect_url": ev.ReconnectURL,
		"comment_id": ev.CommentID, "author_id": ev.AuthorID, "author_name": ev.AuthorName,
		"text": ev.Text, "account_id": ev.AccountID, "follower_id": ev.FollowerID,
		"follower_name": ev.FollowerName,
	}
}
