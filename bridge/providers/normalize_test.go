package providers_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/socialbridge/bridge/bridge/event"
	"github.com/socialbridge/bridge/bridge/failure"
	"github.com/socialbridge/bridge/bridge/providers"
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

// syntaxReason is how encoding/json judges body: "" if it is valid JSON, else the reason
// Normalize must fail with.
func syntaxReason(body []byte) string {
	err := json.Unmarshal(body, new(json.RawMessage))
	if err == nil {
		return ""
	}
	if se, ok := errors.AsType[*json.SyntaxError](err); ok {
		return fmt.Sprintf("malformed JSON: %v (offset %d)", se, se.Offset)
	}
	return "not a syntax error: " + err.Error()
}

// trickyBodies are deliveries whose JSON is on the edges of the grammar, valid or not,
// mostly where the presets only skip over it.
var trickyBodies = []string{
	"", " ", "\xef\xbb\xbf{}", "{}x", "{} ", "[]", `"x"`, "1e", "-", "01", "nul",
	`{"id":"e1","event":"post.published","data":{"post_id":"p"}}x`,
	`{"id":"e1","event":"post.published","data":{"post_id":"p"},}`,
	`{"id":"e1","event":"post.published","data":{"post_id":"p",}}`,
	`{"id":"e1","event":"post.published","data":{"post_id":"p","n":1e}}`,
	`{"id":"e1","event":"post.published","data":{"post_id":"p","n":-}}`,
	`{"id":"e1","event":"post.published","data":{"post_id":"p","n":01}}`,
	`{"id":"e1","event":"post.published","data":{"post_id":"p","n":1.5e+308,"m":-0.0E-0}}`,
	`{"id":"e1","event":"post.published","data":{"post_id":"p","n":` + strings.Repeat("9", 400) + `}}`,
	`{"id":"e1","event":"post.published","data":{"post_id":"\u12"}}`,
	`{"id":"e1","event":"post.published","data":{"post_id":"\ud800"}}`,
	`{"id":"e1","event":"post.published","data":{"post_id":"\ud800\udc00\u00e9\/\"\\"}}`,
	"{\"id\":\"e1\",\"event\":\"post.published\",\"data\":{\"post_id\":\"a\tb\"}}",
	"{\"id\":\"e1\",\"event\":\"post.published\",\"data\":{\"post_id\":\"\xff\xfe\"}}",
	`{"id":"e1","event":"post.published","data":{"post_id":"p","x":{"y":[true,false,null,{}]}}}`,
	`{"id":"e1","event":"post.published","data":{"post_id":"p","x":{"y":[tru]}}}`,
	`{"id":"e1","event":"post.published","data":{"post_id":"p","x":{"y":[1}}}}`,
	`{"id":"e1","event":"post.published","unknown":[{"a":"b"}],"data":{"post_id":"p"}}`,
	`{"id":"e1","event":"post.published","unknown":[{"a":"b"]}],"data":{"post_id":"p"}}`,
	`{"id":"e1","event":"post.published","data":{"x":` + strings.Repeat("[", 9998) + strings.Repeat("]", 9998) + `}}`,
	`{"id":"e1","event":"post.published","data":{"x":` + strings.Repeat("[", 9999) + strings.Repeat("]", 9999) + `}}`,
	`{"id":"e1","event":"post.published","data":{"x":` + strings.Repeat("[", 20000),
}

// FuzzNormalize checks that Normalize never panics, fails only as Unnormalizable, fails as
// malformed exactly when and where encoding/json finds a syntax error, and agrees with
// encoding/json on what it reads.
func FuzzNormalize(f *testing.F) {
	for _, dir := range presetDirs {
		inputs, _ := filepath.Glob(filepath.Join("testdata", dir, "*.json"))
		for _, in := range inputs {
			body, _ := os.ReadFile(in)
			f.Add(body, "post.published", "msg_1")
			f.Add(body, "", "")
		}
	}
	for _, body := range trickyBodies {
		f.Add([]byte(body), "", "msg_1")
	}
	f.Fuzz(func(t *testing.T, body []byte, typ, id string) {
		cases := []struct {
			p        providers.Preset
			h        headers
			typeName string
		}{
			{providers.CodivUpload{}, headers{"X-CodivUpload-Event": []byte(typ)}, "event"},
			{providers.StandardWebhooks{}, headers{"webhook-id": []byte(id)}, "type"},
		}
		syntax := syntaxReason(body)
		if json.Valid(body) != (syntax == "") {
			t.Fatalf("json.Valid = %t, but encoding/json says %q", json.Valid(body), syntax)
		}
		object := bytes.HasPrefix(bytes.TrimLeft(body, " \t\r\n"), []byte("{"))
		for _, c := range cases {
			var ev event.Event
			err := c.p.Normalize(c.h, body, &ev)
			if err != nil {
				fe, ok := errors.AsType[*failure.Error](err)
				if !ok || fe.Kind != failure.Unnormalizable {
					t.Fatalf("%T: err = %#v, want a *failure.Error of kind Unnormalizable", c.p, err)
				}
				switch {
				case syntax != "" && fe.Reason != syntax:
					t.Fatalf("%T: invalid JSON reported as %q, encoding/json says %q", c.p, fe.Reason, syntax)
				case syntax == "" && strings.HasPrefix(fe.Reason, "malformed JSON") &&
					(object || !strings.HasPrefix(fe.Reason, "malformed JSON: want an object, got ")):
					t.Fatalf("%T: valid JSON reported as %q", c.p, fe.Reason)
				}
				continue
			}
			if syntax != "" {
				t.Fatalf("%T: normalized invalid JSON (%s)", c.p, syntax)
			}
			checkAgainstJSON(t, c.p, body, &ev)
		}
	})
}

func checkAgainstJSON(t *testing.T, p providers.Preset, body []byte, ev *event.Event) {
	var m map[string]any
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		t.Fatalf("%T: normalized a body encoding/json refuses: %v", p, err)
	}
	if ev.ID == "" || !event.Known(ev.Type) {
		t.Fatalf("%T: normalized to id %q, type %q", p, ev.ID, ev.Type)
	}
	if _, ok := p.(providers.CodivUpload); ok && m["id"] != ev.ID {
		t.Fatalf("id = %q, encoding/json reads %q", ev.ID, m["id"])
	}
	data, _ := m["data"].(map[string]any)
	for name, got := range stringFields(ev) {
		want, ok := data[name].(string)
		switch {
		case ok && (got == nil || *got != want):
			t.Fatalf("%T: %s = %v, encoding/json reads %q", p, name, got, want)
		case !ok && got != nil:
			t.Fatalf("%T: %s = %q, encoding/json reads %v", p, name, *got, data[name])
		}
	}
}
