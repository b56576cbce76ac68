package service_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/internal/kafkatest"
)

// The tests of this file replay what an attacker may hold (a handshake's answer, one signed
// delivery) and check that nothing new reaches Kafka: after the attacks, a valid delivery is
// accepted (the positive signal: had an attack been produced, Kafka would have acknowledged
// it before answering), and then every topic, the quarantine included, holds only what the
// valid deliveries made.

var xSource = config.Source{Name: "x", Provider: "x", Secrets: []string{xSecret}}

func xHeaders(body []byte) map[string]string {
	mac := hmac.New(sha256.New, []byte(xSecret))
	mac.Write(body)
	return map[string]string{"Content-Type": "application/json", "x-twitter-webhooks-signature": "sha256=" + base64.StdEncoding.EncodeToString(mac.Sum(nil))}
}

// crc asks the x source's CRC for token and returns the status and the response_token.
func crc(t *testing.T, base, token string) (int, string) {
	t.Helper()
	resp, err := httpClient.Get(base + "/webhooks/x?crc_token=" + url.QueryEscape(token))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var a struct {
		ResponseToken string `json:"response_token"`
	}
	if resp.StatusCode == 200 {
		if err := json.Unmarshal(raw, &a); err != nil {
			t.Fatalf("CRC answer %q: %v", raw, err)
		}
	}
	return resp.StatusCode, a.ResponseToken
}

// TestCRCIsNoSigningOracle asks X's CRC to sign a forged revoke, and a token of the shape
// the CRC accepts, and POSTs each with the signature it answered: both are refused, and
// neither an event nor a quarantined delivery is stored.
func TestCRCIsNoSigningOracle(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	cfg := withProviders(t, testConfig(t, brokers), xSource)
	prefix := cfg.Kafka.TopicPrefix
	b := start(t, cfg)
	hook := b.url + "/webhooks/x"
	now := time.Now().UTC().Format(time.RFC3339)
	forged := `{"user_event":{"revoke":{"date_time":"` + now + `","target":{"app_id":"13090192"},"source":{"user_id":"forged_user"}}}}`

	for _, token := range []string{forged, "opaque-token_1.2~3", "12345", "true"} {
		code, sig := crc(t, b.url, token)
		if code != 200 {
			continue // refused: nothing signed
		}
		h := map[string]string{"Content-Type": "application/json", "x-twitter-webhooks-signature": sig}
		if a := post(t, hook, h, []byte(token)); a.Code < 400 || a.Code >= 500 {
			t.Errorf("POST of crc_token %.40q with the CRC's answer as its signature: %d %s, want a 4xx", token, a.Code, a.Raw)
		}
	}

	valid := []byte(`{"user_event":{"revoke":{"date_time":"` + now + `","target":{"app_id":"13090192"},"source":{"user_id":"real_user"}}}}`)
	if a := post(t, hook, xHeaders(valid), valid); a.Code != 200 || a.Status != "accepted" {
		t.Fatalf("a valid delivery after the attacks: %d %s", a.Code, a.Raw)
	}
	if n := len(readTopic(t, brokers, event.Topic(prefix, event.PostTokenExpired))); n != 1 {
		t.Errorf("%s holds %d records, want only the valid delivery's", event.PostTokenExpired, n)
	}
	if n := len(readTopic(t, brokers, event.QuarantineTopic(prefix))); n != 0 {
		t.Errorf("the quarantine holds %d records, want none", n)
	}
}

// githubSource is docs/providers.md's configuration of the generic preset for GitHub:
// the id and the type come from headers that GitHub's signature does not cover.
func githubSource(secret string) config.Source {
	return config.Source{Name: "github", Provider: "hmac", Secrets: []string{secret}, HMAC: &config.HMAC{
		Header: "X-Hub-Signature-256", Prefix: "sha256=", Encoding: "hex", Signed: "{body}",
		ID: "header:X-GitHub-Delivery", Type: "header:X-GitHub-Event",
		Types: map[string]string{"ping": "ignore"},
	}}
}

const githubSecret = "It's a Secret to Everybody"

func github(delivery, typ string, body []byte) map[string]string {
	mac := hmac.New(sha256.New, []byte(githubSecret))
	mac.Write(body)
	return map[string]string{"Content-Type": "application/json", "X-GitHub-Delivery": delivery, "X-GitHub-Event": typ,
		"X-Hub-Signature-256": "sha256=" + hex.EncodeToString(mac.Sum(nil))}
}

// TestHMACReplaysUnderUnsignedHeaders replays signed GitHub-style deliveries under fresh
// delivery ids and swapped type headers: each is a duplicate, whatever became of the first
// delivery (accepted, ignored, quarantined), and nothing new is stored, in the event topics
// or the quarantine, before or after a restart (but for the ignored one, which Kafka does
// not hold: only the running store remembers it). The start warns that these headers are not
// signed.
func TestHMACReplaysUnderUnsignedHeaders(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	cfg := withProviders(t, testConfig(t, brokers), githubSource(githubSecret))
	prefix := cfg.Kafka.TopicPrefix
	hook := func(b *bridge) string { return b.url + "/webhooks/github" }
	published := []byte(`{"action":"published","release":{"id":1}}`)
	ping := []byte(`{"zen":"Keep it logically awesome.","hook_id":123456789}`)
	issue := []byte(`{"action":"opened","issue":{"number":7}}`)

	b := start(t, cfg)
	if !strings.Contains(b.logs.String(), "not covered by its signature") {
		t.Error("no warning at start that the id and type headers are not signed")
	}
	first := []struct {
		delivery, typ string
		body          []byte
		status        string
	}{
		{"d-1", event.PostPublished, published, "accepted"},
		{"d-2", "ping", ping, "ignored"},
		{"d-3", "issues", issue, "quarantined"},
	}
	for _, f := range first {
		if a := post(t, hook(b), github(f.delivery, f.typ, f.body), f.body); a.Status != f.status {
			t.Fatalf("first delivery %s: %d %s, want %s", f.delivery, a.Code, a.Raw, f.status)
		}
	}
	replays := func(b *bridge, round string) {
		t.Helper()
		for i, r := range []struct {
			typ  string
			body []byte
		}{
			{event.PostPublished, published}, // a fresh delivery id
			{event.PostFailed, published},    // and another type
			{"issues", published},            // a type that would be quarantined
			{event.PostPublished, ping},      // the ignored one, under a type that is produced
			{event.PostPublished, issue},     // the quarantined one, likewise
			{"issues", issue},
		} {
			if round == "restarted" && string(r.body) == string(ping) {
				continue
			}
			id := fmt.Sprintf("fresh-%s-%d", round, i)
			if a := post(t, hook(b), github(id, r.typ, r.body), r.body); a.Code != 200 || a.Status != "duplicate" {
				t.Errorf("%s: replay %d (%s as %s): %d %s, want 200 duplicate", round, i, id, r.typ, a.Code, a.Raw)
			}
		}
	}
	replays(b, "running")
	if err := b.stop(t); err != nil {
		t.Fatal(err)
	}
	b = start(t, cfg)
	replays(b, "restarted")

	fresh := []byte(`{"action":"published","release":{"id":2}}`)
	if a := post(t, hook(b), github("d-4", event.PostPublished, fresh), fresh); a.Status != "accepted" {
		t.Fatalf("a new delivery after the replays: %d %s", a.Code, a.Raw)
	}
	for topic, want := range map[string]int{
		event.Topic(prefix, event.PostPublished): 2, event.Topic(prefix, event.PostFailed): 0, event.QuarantineTopic(prefix): 1,
	} {
		if n := len(readTopic(t, brokers, topic)); n != want {
			t.Errorf("%s holds %d records, want %d", topic, n, want)
		}
	}
}

// TestCodivUploadTypeHeaderCannotRefile replays a signed CodivUpload delivery with its
// X-CodivUpload-Event header (not signed) set to another type, known or not: the signed
// body's event decides, so each replay is a duplicate and nothing new is stored, in the
// event topics or the quarantine.
func TestCodivUploadTypeHeaderCannotRefile(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	cfg := testConfig(t, brokers)
	prefix := cfg.Kafka.TopicPrefix
	b := start(t, cfg)
	hook := b.url + "/webhooks/codivupload"
	h, body := codiv(event.PostPublished, "evt_refile")
	if a := post(t, hook, h, body); a.Status != "accepted" {
		t.Fatalf("first delivery: %d %s", a.Code, a.Raw)
	}
	for _, typ := range []string{event.PostFailed, event.PostTokenExpired, "post.deleted", ""} {
		swapped := codivHeaders(typ, body)
		if a := post(t, hook, swapped, body); a.Code != 200 || a.Status != "duplicate" {
			t.Errorf("replay with X-CodivUpload-Event %q: %d %s, want 200 duplicate", typ, a.Code, a.Raw)
		}
	}
	h, body = codiv(event.PostPublished, "evt_after")
	if a := post(t, hook, h, body); a.Status != "accepted" {
		t.Fatalf("a new delivery after the replays: %d %s", a.Code, a.Raw)
	}
	for topic, want := range map[string]int{
		event.Topic(prefix, event.PostPublished): 2, event.Topic(prefix, event.PostFailed): 0,
		event.Topic(prefix, event.PostTokenExpired): 0, event.QuarantineTopic(prefix): 0,
	} {
		if n := len(readTopic(t, brokers, topic)); n != want {
			t.Errorf("%s holds %d records, want %d", topic, n, want)
		}
	}
}

// TestStaleDeliveries replays deliveries whose signed time is older than their source's
// dedup window (CodivUpload's timestamp, Meta's entry time, X's event times), or too far
// ahead of the bridge's clock: each is refused 401 with its reason and counted, and nothing
// is stored; the same deliveries made now are accepted, and so is an old one where max_age is
// 0s.
func TestStaleDeliveries(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	off := config.Duration(0)
	cfg := withProviders(t, testConfig(t, brokers), metaSource, xSource,
		config.Source{Name: "unchecked", Provider: "codivupload", Secrets: []string{codivSecret}, MaxAge: &off})
	prefix := cfg.Kafka.TopicPrefix
	b := start(t, cfg)
	// Each checked source's series is there from the start, at 0, for increase() to count the
	// first replay; a source that checks nothing has none.
	before := scrape(t, b.url)
	for _, source := range []string{"codivupload", "meta", "x"} {
		if line := fmt.Sprintf(`bridge_stale_deliveries_total{source=%q} 0`, source); !strings.Contains(before, line) {
			t.Errorf("before any delivery, metrics lack %s:\n%s", line, grepLines(before, "stale"))
		}
	}
	if strings.Contains(before, `bridge_stale_deliveries_total{source="unchecked"}`) {
		t.Error("a source with max_age 0s has a stale-deliveries series")
	}
	now := time.Now().UTC()
	codivAt := func(id string, at time.Time) (map[string]string, []byte) {
		body := []byte(fmt.Sprintf(`{"event":"post.published","id":%q,"timestamp":%q,"data":{"post_id":"p1","platform":"instagram"}}`, id, at.Format(time.RFC3339)))
		return codivHeaders(event.PostPublished, body), body
	}
	metaAt := func(id string, at time.Time) (map[string]string, []byte) {
		body := []byte(fmt.Sprintf(`{"object":"page","entry":[{"id":"104923907983682","time":%d,"changes":[{"field":"feed","value":{"item":"status","verb":"add","post_id":%q,"created_time":%d}}]}]}`,
			at.Unix(), id, at.Unix()))
		return metaHeaders(body), body
	}
	xAt := func(id string, at time.Time) (map[string]string, []byte) {
		body := []byte(fmt.Sprintf(`{"for_user_id":"3001969357","follow_events":[{"type":"follow","created_timestamp":"%d","target":{"id":"3001969357"},"source":{"id":%q}}]}`,
			at.UnixMilli(), id))
		return xHeaders(body), body
	}
	type build func(id string, at time.Time) (map[string]string, []byte)
	for _, c := range []struct {
		source string
		build  build
		window time.Duration
	}{{"codivupload", codivAt, 24 * time.Hour}, {"meta", metaAt, 36 * time.Hour}, {"x", xAt, 24 * time.Hour}} {
		for _, bad := range []struct {
			at     time.Time
			reason string
		}{
			{now.Add(-c.window - time.Minute), "old"},
			{now.Add(-c.window + time.Minute), "old"}, // within the window less the clock skew allowed
			{now.Add(-30 * 24 * time.Hour), "old"},
			{now.Add(time.Hour), "ahead"},
		} {
			h, body := c.build("evt_stale_"+c.source, bad.at)
			a := post(t, b.url+"/webhooks/"+c.source, h, body)
			if a.Code != 401 || !strings.Contains(a.Error, bad.reason) {
				t.Errorf("%s, signed at now%+v: %d %s, want 401 naming it too %s", c.source, bad.at.Sub(now).Round(time.Minute), a.Code, a.Raw, bad.reason)
			}
		}
		h, body := c.build("evt_fresh_"+c.source, now.Add(-c.window/2))
		if a := post(t, b.url+"/webhooks/"+c.source, h, body); a.Code != 200 || a.Status != "accepted" {
			t.Errorf("%s, signed half a window ago: %d %s, want accepted", c.source, a.Code, a.Raw)
		}
		h, body = c.build("evt_skewed_"+c.source, now.Add(2*time.Minute))
		if a := post(t, b.url+"/webhooks/"+c.source, h, body); a.Code != 200 || a.Status != "accepted" {
			t.Errorf("%s, signed 2 minutes ahead: %d %s, want accepted", c.source, a.Code, a.Raw)
		}
	}
	h, body := codivAt("evt_unchecked", now.Add(-30*24*time.Hour))
	if a := post(t, b.url+"/webhooks/unchecked", h, body); a.Code != 200 || a.Status != "accepted" {
		t.Errorf("a month-old delivery to a source with max_age 0s: %d %s, want accepted", a.Code, a.Raw)
	}
	metrics := scrape(t, b.url)
	for _, source := range []string{"codivupload", "meta", "x"} {
		if line := fmt.Sprintf(`bridge_stale_deliveries_total{source=%q} 4`, source); !strings.Contains(metrics, line) {
			t.Errorf("metrics lack %s:\n%s", line, grepLines(metrics, "stale"))
		}
	}
	for topic, want := range map[string]int{
		event.Topic(prefix, event.PostPublished): 5, event.Topic(prefix, event.FollowerGained): 2, event.QuarantineTopic(prefix): 0,
	} {
		if n := len(readTopic(t, brokers, topic)); n != want {
			t.Errorf("%s holds %d records, want %d", topic, n, want)
		}
	}
}
