package service_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/internal/kafkatest"
)

// TestAnswers sends one request per answer of docs/http.md and then checks what Kafka holds:
// the accepted record, the quarantined body, and nothing for any refused request.
func TestAnswers(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	cfg := testConfig(t, brokers)
	b := start(t, cfg)
	hook := b.url + "/webhooks/codivupload"

	okHeaders, okBody := codiv("post.published", "evt_answers_ok")
	badSig := copyHeaders(okHeaders)
	badSig["X-CodivUpload-Signature"] = strings.Repeat("0", 64)
	noSig := copyHeaders(okHeaders)
	delete(noSig, "X-CodivUpload-Signature")
	plain := copyHeaders(okHeaders)
	plain["Content-Type"] = "text/plain"
	unknownType, unknownBody := codiv("post.exploded", "evt_answers_unknown")
	_, refusedBody := codiv("post.published", "evt_answers_refused")
	malformed := []byte(`{"event":"post.published","id":`)
	big := bytes.Repeat([]byte("x"), cfg.HTTP.MaxBodyBytes+1)

	cases := []struct {
		name         string
		method, url  string
		headers      map[string]string
		body         []byte
		code         int
		status, want string
	}{
		{"accepted", "POST", hook, okHeaders, okBody, 200, "accepted", ""},
		{"duplicate", "POST", hook, okHeaders, okBody, 200, "duplicate", ""},
		{"wrong signature", "POST", hook, badSig, refusedBody, 401, "unauthorized", "signature"},
		{"missing signature", "POST", hook, noSig, refusedBody, 401, "unauthorized", "X-CodivUpload-Signature"},
		{"unknown source", "POST", b.url + "/webhooks/nope", okHeaders, refusedBody, 404, "not_found", `unknown source "nope"`},
		{"wrong method", "GET", hook, nil, nil, 405, "method_not_allowed", "GET"},
		{"wrong method put", "PUT", hook, okHeaders, refusedBody, 405, "method_not_allowed", "PUT"},
		{"too large", "POST", hook, codivHeaders("post.published", big), big, 413, "too_large", ""},
		{"not json", "POST", hook, plain, refusedBody, 415, "unsupported_media_type", "application/json"},
		{"malformed json", "POST", hook, codivHeaders("post.published", malformed), malformed, 202, "quarantined", "malformed JSON"},
		{"unknown type", "POST", hook, unknownType, unknownBody, 202, "quarantined", "post.exploded"},
	}
	for _, c := range cases {
		a := send(t, httpClient, c.method, c.url, c.headers, c.body)
		if a.Code != c.code || a.Status != c.status {
			t.Errorf("%s: got %d %q (%s%s), want %d %q", c.name, a.Code, a.Status, a.Error, a.Reason, c.code, c.status)
		}
		if got := a.Error + a.Reason; !strings.Contains(got, c.want) {
			t.Errorf("%s: reason %q does not mention %q", c.name, got, c.want)
		}
	}

	recs := readTopic(t, brokers, cfg.Kafka.TopicPrefix+"post.published")
	if len(recs) != 1 || string(recs[0].Key) != "evt_answers_ok" {
		t.Fatalf("post.published holds %d records, want exactly the accepted one", len(recs))
	}
	dead := readTopic(t, brokers, cfg.Kafka.TopicPrefix+event.QuarantineSuffix)
	if len(dead) != 2 {
		t.Fatalf("deadletter holds %d records, want the 2 quarantined", len(dead))
	}
	if !bytes.Equal(dead[0].Value, malformed) && !bytes.Equal(dead[1].Value, malformed) {
		t.Errorf("the malformed body is not kept verbatim in the quarantine")
	}
	for _, r := range dead {
		if header(r, "reason") == "" || header(r, "source") != "codivupload" || header(r, "provider") != "codivupload" ||
			header(r, "content-type") != "application/json" {
			t.Errorf("quarantined record lacks reason, source, provider or content-type headers: %v", r.Headers)
		}
		if at, err := time.Parse(time.RFC3339Nano, header(r, "received-at")); err != nil || !at.Truncate(time.Millisecond).Equal(r.Timestamp) {
			t.Errorf("quarantined record: received-at %q, record timestamp %v: want the same instant", header(r, "received-at"), r.Timestamp)
		}
	}
	for _, topic := range event.Topics(cfg.Kafka.TopicPrefix) {
		if strings.HasSuffix(topic, "post.published") || strings.HasSuffix(topic, event.QuarantineSuffix) {
			continue
		}
		if n := len(readTopic(t, brokers, topic)); n != 0 {
			t.Errorf("%s holds %d records; refused requests must produce nothing", topic, n)
		}
	}
}

func TestAcceptedAnswerNamesTheRecord(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	cfg := testConfig(t, brokers)
	b := start(t, cfg)
	h, body := codiv("post.failed", "evt_where")
	a := send(t, httpClient, "POST", b.url+"/webhooks/codivupload", h, body)
	if a.Code != 200 || a.Partition == nil || a.Offset == nil || a.EventID != "evt_where" {
		t.Fatalf("answer %+v", a)
	}
	if a.Topic != cfg.Kafka.TopicPrefix+"post.failed" {
		t.Fatalf("topic %q", a.Topic)
	}
	r := only(t, readTopic(t, brokers, a.Topic))
	if string(r.Key) != "evt_where" || r.Partition != *a.Partition || r.Offset != *a.Offset {
		t.Fatalf("answered %s at %d/%d, the topic holds %s at %d/%d", a.EventID, *a.Partition, *a.Offset, r.Key, r.Partition, r.Offset)
	}
}

func TestSameEventTwiceAndConcurrently(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	cfg := testConfig(t, brokers)
	b := start(t, cfg)
	hook := b.url + "/webhooks/codivupload"

	h, body := codiv("post.published", "evt_twice")
	if a := send(t, httpClient, "POST", hook, h, body); a.Status != "accepted" {
		t.Fatalf("first: %+v", a)
	}
	if a := send(t, httpClient, "POST", hook, h, body); a.Code != 200 || a.Status != "duplicate" || a.EventID != "evt_twice" {
		t.Fatalf("second: %+v", a)
	}

	h, body = codiv("post.published", "evt_concurrent")
	statuses := make(chan string, 20)
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, err := exchange(httpClient, "POST", hook, h, body)
			if err != nil {
				statuses <- err.Error()
				return
			}
			statuses <- fmt.Sprintf("%d %s", a.Code, a.Status)
		}()
	}
	wg.Wait()
	close(statuses)
	count := map[string]int{}
	for s := range statuses {
		count[s]++
	}
	if count["200 accepted"] != 1 || count["200 duplicate"] != 19 {
		t.Fatalf("20 concurrent deliveries answered %v; want 1 accepted and 19 duplicates", count)
	}
	recs := readTopic(t, brokers, cfg.Kafka.TopicPrefix+"post.published")
	if n := countKey(recs, "evt_twice"); n != 1 {
		t.Errorf("evt_twice is in kafka %d times", n)
	}
	if n := countKey(recs, "evt_concurrent"); n != 1 {
		t.Errorf("evt_concurrent is in kafka %d times", n)
	}
}

func TestRestartKeepsDedup(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	cfg := testConfig(t, brokers)
	first := start(t, cfg)
	h, body := codiv("post.token_expired", "evt_restart")
	if a := send(t, httpClient, "POST", first.url+"/webhooks/codivupload", h, body); a.Status != "accepted" {
		t.Fatalf("before restart: %+v", a)
	}
	first.stop(t)

	second := start(t, cfg)
	if a := send(t, httpClient, "POST", second.url+"/webhooks/codivupload", h, body); a.Code != 200 || a.Status != "duplicate" {
		t.Fatalf("after restart the same event was answered %+v; want duplicate", a)
	}
	if n := countKey(readTopic(t, brokers, cfg.Kafka.TopicPrefix+"post.token_expired"), "evt_restart"); n != 1 {
		t.Fatalf("evt_restart is in kafka %d times", n)
	}
}

func TestHealthReadyMetrics(t *testing.T) {
	b := start(t, testConfig(t, kafkatest.Brokers(t)))
	if a := send(t, httpClient, "GET", b.url+"/healthz", nil, nil); a.Code != 200 {
		t.Errorf("healthz: %+v", a)
	}
	if a := send(t, httpClient, "GET", b.url+"/readyz", nil, nil); a.Code != 200 || a.Status != "ready" {
		t.Errorf("readyz: %+v", a)
	}
	h, body := codiv("post.published", "evt_metrics")
	send(t, httpClient, "POST", b.url+"/webhooks/codivupload", h, body)
	h["X-CodivUpload-Signature"] = strings.Repeat("ab", 32)
	send(t, httpClient, "POST", b.url+"/webhooks/codivupload", h, body)
	resp, err := httpClient.Get(b.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var text bytes.Buffer
	text.ReadFrom(resp.Body)
	for _, want := range []string{
		`bridge_requests_total{code="200",source="codivupload"} 1`,
		`bridge_requests_total{code="401",source="codivupload"} 1`,
		`bridge_verification_failures_total{source="codivupload"} 1`,
		`bridge_produce_seconds_bucket{outcome="acked"`,
		`bridge_requests_in_flight`,
		`bridge_dedup_ids 1`,
		`bridge_dedup_evicted_total 0`,
	} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if resp.StatusCode != http.StatusOK {
		t.Errorf("metrics: %d", resp.StatusCode)
	}
}

func copyHeaders(h map[string]string) map[string]string {
	out := make(map[string]string, len(h))
	for k, v := range h {
		out[k] = v
	}
	return out
}

// TestBodyIsNeverInflated sends a signed gzip body with Content-Encoding: gzip. The bridge
// must verify and keep the bytes as sent, never inflate them (an inflated body escapes the
// size limit): they are not JSON, so they are quarantined verbatim.
func TestBodyIsNeverInflated(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	cfg := testConfig(t, brokers)
	b := start(t, cfg)
	_, plain := codiv("post.published", "evt_gzip")
	var zipped bytes.Buffer
	zw := gzip.NewWriter(&zipped)
	zw.Write(plain)
	zw.Close()
	h := codivHeaders("post.published", zipped.Bytes())
	h["Content-Encoding"] = "gzip"
	a := send(t, httpClient, "POST", b.url+"/webhooks/codivupload", h, zipped.Bytes())
	if a.Code != 202 || a.Status != "quarantined" {
		t.Fatalf("signed gzip bytes answered %+v; want 202 quarantined", a)
	}
	dead := only(t, readTopic(t, brokers, cfg.Kafka.TopicPrefix+event.QuarantineSuffix))
	if !bytes.Equal(dead.Value, zipped.Bytes()) {
		t.Fatal("the quarantined value is not the bytes as sent")
	}
}

// TestRecordTooLargeForKafka: topics that exist with a max.message.bytes below the record
// limit derived from http.max_body_bytes are warned of at start; a body within
// http.max_body_bytes whose record such a topic refuses is answered 413 (retrying cannot
// help), and nothing is stored.
func TestRecordTooLargeForKafka(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	cfg := testConfig(t, brokers)
	small := "32768"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := admin(t, brokers).CreateTopics(ctx, 2, -1, map[string]*string{"max.message.bytes": &small}, event.Topics(cfg.Kafka.TopicPrefix)...)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	b := start(t, cfg)
	if logs := b.logs.String(); !strings.Contains(logs, "topic below the configured settings") || !strings.Contains(logs, "max.message.bytes 32768, want at least") {
		t.Errorf("no warning of the topics' max.message.bytes at start:\n%s", logs)
	}
	noise := make([]byte, 45<<10) // incompressible: lz4 must not bring it under the limit
	rand.Read(noise)
	body := []byte(`{"event":"post.published","id":"evt_huge","data":{"post_id":"p","platform":"x"},"padding":"` +
		base64.StdEncoding.EncodeToString(noise) + `"}`)
	a := send(t, httpClient, "POST", b.url+"/webhooks/codivupload", codivHeaders("post.published", body), body)
	if a.Code != 413 || a.Status != "too_large" || !strings.Contains(a.Error, "larger than kafka accepts") {
		t.Fatalf("a %d-byte body: %+v; want 413, larger than kafka accepts", len(body), a)
	}
	h, ok := codiv("post.published", "evt_after_huge")
	if a := send(t, httpClient, "POST", b.url+"/webhooks/codivupload", h, ok); a.Status != "accepted" {
		t.Fatalf("the next delivery: %+v", a)
	}
	if n := countKey(readTopic(t, brokers, cfg.Kafka.TopicPrefix+"post.published"), "evt_huge"); n != 0 {
		t.Errorf("evt_huge is in kafka %d times", n)
	}
}
