package service_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/bridge/service"
	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/internal/kafkatest"
)

// The secrets of FORMATS.md's samples.
const (
	codivSecret    = "cdv_whsec_3b9c1f7a2e5d8b6c4a1f0e9d8c7b6a5f"
	standardSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
)

func testConfig(t *testing.T, brokers []string) config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.HTTP.MaxBodyBytes = 64 << 10
	cfg.Kafka.Brokers = brokers
	cfg.Kafka.TopicPrefix = kafkatest.Prefix(t)
	cfg.Kafka.Partitions = 2
	cfg.Kafka.ProduceTimeout = config.Duration(3 * time.Second)
	cfg.Sources = []config.Source{
		{Name: "codivupload", Provider: "codivupload", Secrets: []string{"old-rotated-secret", codivSecret}},
		{Name: "acme", Provider: "standard-webhooks", Secrets: []string{standardSecret}},
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// syncBuffer collects a bridge's log for inspection.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// bridge is a running bridge under test.
type bridge struct {
	*service.Service
	url  string
	logs *syncBuffer
}

// start runs a bridge on cfg and waits until its dedup store answers (Kafka itself may be
// meant to be unready: a test may leave a topic out).
func start(t *testing.T, cfg config.Config) *bridge {
	t.Helper()
	b := launch(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := b.WaitDedup(ctx); err != nil {
		t.Fatal(err)
	}
	return b
}

// launch runs a bridge on cfg without waiting for it to be ready.
func launch(t *testing.T, cfg config.Config) *bridge {
	t.Helper()
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(io.MultiWriter(logs, testWriter{t}), &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := service.New(ctx, cfg, log)
	if err != nil {
		t.Fatalf("start bridge: %v", err)
	}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	b := &bridge{Service: s, url: "http://" + s.Addr(), logs: logs}
	t.Cleanup(func() { b.stop(t) })
	return b
}

var stopped sync.Map

func (b *bridge) stop(t *testing.T) {
	if _, done := stopped.LoadOrStore(b, true); done {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := b.Shutdown(ctx); err != nil {
		t.Logf("shutdown: %v", err)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s", bytes.TrimRight(p, "\n"))
	return len(p), nil
}

// answer is a decoded ingress answer.
type answer struct {
	Code      int
	Header    http.Header
	Status    string `json:"status"`
	EventID   string `json:"event_id"`
	Topic     string `json:"topic"`
	Partition *int32 `json:"partition"`
	Offset    *int64 `json:"offset"`
	Reason    string `json:"reason"`
	Error     string `json:"error"`
}

var httpClient = &http.Client{Timeout: 30 * time.Second}

func send(t *testing.T, client *http.Client, method, url string, h map[string]string, body []byte) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{Code: resp.StatusCode, Header: resp.Header}
	if err := json.Unmarshal(raw, &a); err != nil {
		t.Fatalf("%s %s answered %d with a body that is not JSON: %q", method, url, resp.StatusCode, raw)
	}
	if a.Status == "" {
		t.Fatalf("answer without a status field: %s", raw)
	}
	return a
}

// codiv builds a signed CodivUpload delivery.
func codiv(eventType, id string) (map[string]string, []byte) {
	body := []byte(fmt.Sprintf(`{"event":%q,"id":%q,"timestamp":"2026-05-08T14:00:42Z","data":{"post_id":"post_k8m2v9x1","profile_name":"main","platform":"instagram","platform_post_id":"17891234567890","platform_post_url":"https://instagram.com/p/Cabc123/","scheduled_at":"2026-05-08T14:00:00Z","published_at":"2026-05-08T14:00:42Z"}}`, eventType, id))
	return codivHeaders(eventType, body), body
}

func codivHeaders(eventType string, body []byte) map[string]string {
	mac := hmac.New(sha256.New, []byte(codivSecret))
	mac.Write(body)
	return map[string]string{
		"Content-Type":            "application/json",
		"X-CodivUpload-Event":     eventType,
		"X-CodivUpload-Signature": hex.EncodeToString(mac.Sum(nil)),
	}
}

// standard builds a signed Standard Webhooks delivery, timestamped now.
func standard(id string, body []byte) map[string]string {
	key, _ := base64.StdEncoding.DecodeString(standardSecret[len("whsec_"):])
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "."))
	mac.Write(body)
	return map[string]string{
		"Content-Type":      "application/json",
		"webhook-id":        id,
		"webhook-timestamp": ts,
		"webhook-signature": "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil)),
	}
}

// readTopic reads every record of topic, from the start to the end offsets of now, with a
// plain franz-go consumer.
func readTopic(t *testing.T, brokers []string, topic string) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	ends, err := kadm.NewClient(adm).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("end offsets of %s: %v", topic, err)
	}
	want := int64(0)
	ends.Each(func(o kadm.ListedOffset) { want += o.Offset })
	if want == 0 {
		return nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for int64(len(recs)) < want {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %s: got %d of %d records: %v", topic, len(recs), want, err)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Logf("fetch %s: %v", topic, err) })
		recs = append(recs, fs.Records()...)
	}
	return recs
}

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

func countKey(recs []*kgo.Record, key string) int {
	n := 0
	for _, r := range recs {
		if string(r.Key) == key {
			n++
		}
	}
	return n
}
