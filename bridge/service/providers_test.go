package service_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/bridge/providers"
	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/internal/kafkatest"
	"github.com/socialbridge/bridge/internal/sender"
)

// The secrets of the Meta and X samples (bridge/providers/testdata), and URL tokens.
const (
	metaSecret      = "0123456789abcdef0123456789abcdef"
	metaVerifyToken = "my-verify-token"
	xSecret         = "z3ZX4v7mAAUGykl3EcmkqbartmuW8VFOOzCloLx9Q45P0hLrFu"
	uploadPostToken = "9f2c4e7a1b3d5f608a2c4e6b8d0f1a3c"
	postizToken     = "0e1d2c3b4a5968778695a4b3c2d1e0f9"
)

func withProviders(t *testing.T, cfg config.Config, sources ...config.Source) config.Config {
	t.Helper()
	cfg.Sources = append(cfg.Sources, sources...)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

var metaSource = config.Source{Name: "meta", Provider: "meta", Secrets: []string{metaSecret}, VerifyToken: metaVerifyToken}

func metaHeaders(body []byte) map[string]string {
	mac := hmac.New(sha256.New, []byte(metaSecret))
	mac.Write(body)
	return map[string]string{"Content-Type": "application/json", "X-Hub-Signature-256": "sha256=" + hex.EncodeToString(mac.Sum(nil))}
}

// batchAnswer is the answer to a delivery of several events.
type batchAnswer struct {
	Code   int
	Header http.Header
	Raw    string
	Status string   `json:"status"`
	Error  string   `json:"error"`
	Events []answer `json:"events"`
}

func post(t *testing.T, url string, h map[string]string, body []byte) batchAnswer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header.Set(k, v)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := batchAnswer{Code: resp.StatusCode, Header: resp.Header, Raw: string(raw)}
	if err := json.Unmarshal(raw, &a); err != nil {
		t.Fatalf("answer %d is not JSON: %q", resp.StatusCode, raw)
	}
	return a
}

// metaTime is the entry time of metaBatch: when the test binary started, since Meta's entry
// time is signed and a delivery older than the dedup window is refused as a replay.
var metaTime = strconv.FormatInt(time.Now().Unix(), 10)

// metaBatch is one Meta delivery of four changes: a follow, a comment, a Page post, and a
// reaction no canonical type matches.
var metaBatch = []byte(`{"object":"page","entry":[{"id":"104923907983682","time":` + metaTime + `,"changes":[` +
	`{"field":"feed","value":{"item":"like","verb":"add","user_id":6543210987654321}},` +
	`{"field":"feed","value":{"item":"comment","verb":"add","comment_id":"108683297607743_1","post_id":"104923907983682_108683297607743","message":"caf\u00e9","created_time":1767225600,"from":{"id":"42","name":"Ann"}}},` +
	`{"field":"feed","value":{"item":"status","verb":"add","post_id":"104923907983682_2","created_time":1767225600}},` +
	`{"field":"feed","value":{"item":"reaction","verb":"add","post_id":"104923907983682_2","reaction_type":"love"}}]}]}`)

// TestMetaBatchPartlyFailed sends a delivery of several events, one of which Kafka cannot
// take (its topic does not exist yet): the delivery is answered 503, the others are stored;
// Meta's retry, once the topic is there, stores the last one, and each event is in Kafka
// exactly once.
func TestMetaBatchPartlyFailed(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	cfg := withProviders(t, testConfig(t, brokers), metaSource)
	cfg.Kafka.CreateTopics = false
	prefix := cfg.Kafka.TopicPrefix
	adm := admin(t, brokers)
	var topics []string
	for _, topic := range event.Topics(prefix) {
		if topic != prefix+"comment.received" {
			topics = append(topics, topic)
		}
	}
	createTopics(t, adm, topics...)
	b := start(t, cfg)
	hook := b.url + "/webhooks/meta"

	first := post(t, hook, metaHeaders(metaBatch), metaBatch)
	if first.Code != 503 || first.Header.Get("Retry-After") == "" || !strings.Contains(first.Error, "1 of the delivery's 4 events failed") {
		t.Fatalf("first delivery: %d %s, want 503 with Retry-After", first.Code, first.Raw)
	}
	gained, published := readTopic(t, brokers, prefix+"follower.gained"), readTopic(t, brokers, prefix+"post.published")
	if len(gained) != 1 || len(published) != 1 {
		t.Fatalf("after the failed delivery: %d follower.gained, %d post.published records; want the 2 that Kafka took", len(gained), len(published))
	}

	createTopics(t, adm, prefix+"comment.received")
	var retry batchAnswer
	for attempt := 0; attempt < 10; attempt++ { // Meta retries; the client may need a moment to see the topic
		if retry = post(t, hook, metaHeaders(metaBatch), metaBatch); retry.Code == 200 {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	statuses := make([]string, len(retry.Events))
	for i, e := range retry.Events {
		statuses[i] = e.Status
	}
	if retry.Code != 200 || retry.Status != "accepted" || !slices.Equal(statuses, []string{"duplicate", "accepted", "duplicate", "ignored"}) {
		t.Fatalf("retry: %d %s", retry.Code, retry.Raw)
	}
	comment := retry.Events[1]
	if comment.Topic != prefix+"comment.received" || comment.Offset == nil || comment.EventID == "" {
		t.Fatalf("retry's comment: %+v", comment)
	}

	again := post(t, hook, metaHeaders(metaBatch), metaBatch)
	if again.Code != 200 || again.Status != "duplicate" {
		t.Fatalf("a third delivery: %d %s, want every event a duplicate", again.Code, again.Raw)
	}
	for _, topic := range []string{"follower.gained", "post.published", "comment.received"} {
		recs := readTopic(t, brokers, prefix+topic)
		if len(recs) != 1 || header(recs[0], "source") != "meta" || header(recs[0], "provider") != "meta" {
			t.Fatalf("%s holds %d records, want exactly 1 from source meta", topic, len(recs))
		}
	}
	c := only(t, readTopic(t, brokers, prefix+"comment.received"))
	got := decode(t, "single-object", nil, prefix+"comment.received", "comment.received", c.Value)
	wantFields(t, got, map[string]any{"event_id": comment.EventID, "comment_id": "108683297607743_1", "text": "café", "author_name": "Ann", "platform": "facebook"})
	raw, _ := unwrap(got["raw_payload"]).(string)
	if !strings.Contains(raw, `"caf\u00e9"`) || strings.Contains(raw, "reaction") || strings.Contains(raw, `"item":"like"`) {
		t.Fatalf("the comment's raw payload is not the delivery narrowed to it, as sent: %s", raw)
	}
}

// TestHandshakes answers the GETs that Meta and X send before they deliver, and keeps 405
// for the sources whose providers send none.
func TestHandshakes(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	cfg := withProviders(t, testConfig(t, brokers), metaSource,
		config.Source{Name: "x", Provider: "x", Secrets: []string{"the consumer secret before rotation", xSecret}})
	b := start(t, cfg)
	get := func(path string) (int, string, string) {
		resp, err := httpClient.Get(b.url + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(body)
	}
	for _, c := range []struct {
		path, contentType, body string
		code                    int
	}{
		{"/webhooks/meta?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=my-verify-token", "text/plain; charset=utf-8", "1158201444", 200},
		{"/webhooks/meta?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=guess", "application/json", `"verification refused: hub.verify_token does not match"`, 401},
		{"/webhooks/x?crc_token=9b4507b3-9040-4669-9ca3-6b94edb50553&nonce=MTUz", "application/json", `{"response_token":"sha256=Cytd4Sq+NvEcV3MMrXxWJGJx5A+y/lXzzU2Maartkx8="}`, 200},
		{"/webhooks/x", "application/json", `"CRC refused`, 401},
		{"/webhooks/codivupload", "application/json", `"method_not_allowed"`, 405},
		{"/webhooks/nope?crc_token=1", "application/json", `"not_found"`, 404},
	} {
		code, ct, body := get(c.path)
		if code != c.code || !strings.HasPrefix(ct, c.contentType) || !strings.Contains(body, c.body) {
			t.Errorf("GET %s = %d %s %s, want %d %s %s", c.path, code, ct, body, c.code, c.contentType, c.body)
		}
	}
	if strings.Contains(b.logs.String(), metaVerifyToken) {
		t.Error("the verify token is in the log")
	}
}

// TestURLTokens authenticates the senders that sign nothing by the token that ends their
// URL, and keeps the token out of answers, metrics and logs.
func TestURLTokens(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	cfg := withProviders(t, testConfig(t, brokers),
		config.Source{Name: "uploadpost", Provider: "upload-post", Secrets: []string{uploadPostToken}},
		config.Source{Name: "postiz", Provider: "postiz", Secrets: []string{postizToken}})
	b := start(t, cfg)
	upload := []byte(`{"event":"upload_completed","job_id":"job_url_tokens","profile_username":"brand","platform":"tiktok","result":{"success":false,"error":"Access token expired"},"created_at":"2026-01-01T00:00:00.000000"}`)
	jsonCT := map[string]string{"Content-Type": "application/json"}
	wrong := uploadPostToken[:31] + "0"
	for _, c := range []struct {
		name, path string
		body       []byte
		code       int
		status     string
	}{
		{"right token", "/webhooks/uploadpost/" + uploadPostToken, upload, 200, "accepted"},
		{"again", "/webhooks/uploadpost/" + uploadPostToken, upload, 200, "duplicate"},
		{"wrong token", "/webhooks/uploadpost/" + wrong, upload, 401, "unauthorized"},
		{"another source's token", "/webhooks/uploadpost/" + postizToken, upload, 401, "unauthorized"},
		{"no token", "/webhooks/uploadpost", upload, 401, "unauthorized"},
		{"a token to a signed source", "/webhooks/codivupload/" + uploadPostToken, upload, 404, "not_found"},
		{"a path under the token", "/webhooks/uploadpost/" + uploadPostToken + "/x", upload, 404, "not_found"},
		{"postiz's empty list", "/webhooks/postiz/" + postizToken, []byte(`[]`), 200, "ignored"},
	} {
		a := post(t, b.url+c.path, jsonCT, c.body)
		if a.Code != c.code || a.Status != c.status {
			t.Errorf("%s: %d %s, want %d %s", c.name, a.Code, a.Raw, c.code, c.status)
		}
		for _, token := range []string{uploadPostToken, wrong, postizToken} {
			if strings.Contains(a.Raw, token) {
				t.Errorf("%s: the answer shows a token: %s", c.name, a.Raw)
			}
		}
	}
	failed := only(t, readTopic(t, brokers, cfg.Kafka.TopicPrefix+"post.failed"))
	if header(failed, "source") != "uploadpost" {
		t.Errorf("post.failed record from %q", header(failed, "source"))
	}
	metrics := scrape(t, b.url)
	if !strings.Contains(metrics, `bridge_requests_total{code="200",source="uploadpost"} 2`) ||
		!strings.Contains(metrics, `bridge_verification_failures_total{source="uploadpost"} 3`) ||
		!strings.Contains(metrics, `bridge_ignored_events_total{source="postiz"} 1`) {
		t.Errorf("metrics do not count the token requests under their source:\n%s", grepLines(metrics, "bridge_"))
	}
	for _, token := range []string{uploadPostToken, wrong, postizToken} {
		if strings.Contains(metrics, token) || strings.Contains(b.logs.String(), token) {
			t.Fatalf("a URL token is in the metrics or the log")
		}
	}
}

func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := httpClient.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func grepLines(s, substr string) string {
	var out []string
	for line := range strings.Lines(s) {
		if strings.Contains(line, substr) && !strings.HasPrefix(line, "#") {
			out = append(out, line)
		}
	}
	return strings.Join(out, "")
}

func admin(t *testing.T, brokers []string) *kadm.Client {
	t.Helper()
	return kadm.NewClient(client(t, brokers))
}

// client is a plain client of brokers, closed when the test ends.
func client(t *testing.T, brokers []string) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func createTopics(t *testing.T, adm *kadm.Client, topics ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := adm.CreateTopics(ctx, 2, -1, nil, topics...)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range resp.Sorted() {
		if r.Err != nil {
			t.Fatalf("create %s: %v", r.Topic, r.Err)
		}
	}
}

// TestEveryPresetThroughTheBridge sends each webhook preset's simulated deliveries (what
// `bridge simulate` sends) of every type it sends to a running bridge: each is accepted
// into its type's topic, its redelivery is a duplicate, and a tampered copy a 401.
func TestEveryPresetThroughTheBridge(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	scheme := &config.HMAC{Header: "X-Signature", Prefix: "sha256=", Encoding: "base64", Signed: "{header:X-Id}.{timestamp}.{body}",
		TimestampHeader: "X-Timestamp", ID: "header:X-Id", Type: "json:kind", Time: "json:at", Data: "json:payload",
		Types: map[string]string{"published": "post.published"}}
	cfg := withProviders(t, testConfig(t, brokers), metaSource,
		config.Source{Name: "ayrshare", Provider: "ayrshare", Secrets: []string{"my-ayrshare-webhook-secret"}},
		config.Source{Name: "x", Provider: "x", Secrets: []string{xSecret}},
		config.Source{Name: "uploadpost", Provider: "upload-post", Secrets: []string{uploadPostToken}},
		config.Source{Name: "postiz", Provider: "postiz", Secrets: []string{postizToken}},
		config.Source{Name: "generic", Provider: "hmac", Secrets: []string{"generic secret"}, HMAC: scheme})
	b := start(t, cfg)
	ctx := context.Background()
	counts := map[string]int{}
	for _, s := range cfg.Sources {
		src, err := sender.NewConfiguredSource(s.Name, s.Provider, s.Secrets[len(s.Secrets)-1], s.Settings())
		if err != nil {
			t.Fatal(err)
		}
		for i, typ := range src.Types() {
			d, err := src.Sample(typ, fmt.Sprintf("evt_%s_%d", s.Name, i), i, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct {
				d      providers.Delivery
				code   int
				status string
			}{{d, 200, "accepted"}, {d, 200, "duplicate"}, {sender.Tamper(d), 401, "unauthorized"}} {
				a, err := sender.Post(ctx, httpClient, b.url, s.Name, c.d)
				if err != nil || a.Code != c.code || a.Status != c.status {
					t.Fatalf("%s %s: %d %s (%v), want %d %s", s.Name, typ, a.Code, a.Body, err, c.code, c.status)
				}
				if c.status == "accepted" && a.Topic != cfg.Kafka.TopicPrefix+typ {
					t.Fatalf("%s %s went to %s", s.Name, typ, a.Topic)
				}
			}
			counts[typ]++
		}
	}
	if len(counts) != 7 || counts["post.published"] != 8 {
		t.Fatalf("deliveries by type %v: want every type, and a post.published from each of 8 presets", counts)
	}
	for typ, n := range counts {
		if got := len(readTopic(t, brokers, cfg.Kafka.TopicPrefix+typ)); got != n {
			t.Errorf("%s holds %d records, want %d", typ, got, n)
		}
	}
}
