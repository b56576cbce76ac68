package service_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/bridge/service"
	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/internal/kafkatest"
	"github.com/socialbridge/bridge/internal/testkit"
)

// The secrets of the providers' samples (bridge/providers/testdata, docs/providers.md).
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
	cfg.HTTP.DrainPeriod = 0
	cfg.Sources = []config.Source{
		{Name: "codivupload", Provider: "codivupload", Secrets: []string{"old-rotated-secret", codivSecret}},
		{Name: "acme", Provider: "standard-webhooks", Secrets: []string{standardSecret}},
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// bridge is a running bridge under test.
type bridge struct {
	*service.Service
	url  string
	logs *testkit.LogBuffer
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
	logs := &testkit.LogBuffer{}
	log := slog.New(slog.NewTextHandler(io.MultiWriter(logs, testkit.LogWriter(t)), &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := service.New(ctx, cfg, log, service.Options{})
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

// stop shuts b down, once; later calls return nil at once.
func (b *bridge) stop(t *testing.T) error {
	if _, done := stopped.LoadOrStore(b, true); done {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := b.Shutdown(ctx)
	if err != nil {
		t.Logf("shutdown: %v", err)
	}
	return err
}

// answer is a decoded ingress answer.
type answer struct {
	Code      int
	Header    http.Header
	Close     bool   // the answer closed its connection
	Status    string `json:"status"`
	EventID   string `json:"event_id"`
	Topic     string `json:"topic"`
	Partition *int32 `json:"partition"`
	Offset    *int64 `json:"offset"`
	Reason    string `json:"reason"`
	Error     string `json:"error"`
}

var httpClient = &http.Client{Timeout: 30 * time.Second}

// send sends a request and decodes its answer, failing the test if that cannot be done.
// Call it from the test's goroutine only; others call exchange.
func send(t *testing.T, client *http.Client, method, url string, h map[string]string, body []byte) answer {
	t.Helper()
	a, err := exchange(client, method, url, h, body)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// exchange sends a request and decodes its answer, which must be JSON with a status.
func exchange(client *http.Client, method, url string, h map[string]string, body []byte) (answer, error) {
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		return answer{}, err
	}
	for k, v := range h {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		return answer{}, fmt.Errorf("%s %s: %w", method, url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{Code: resp.StatusCode, Header: resp.Header, Close: resp.Close}
	if err := json.Unmarshal(raw, &a); err != nil {
		return a, fmt.Errorf("%s %s answered %d with a body that is not JSON: %q", method, url, resp.StatusCode, raw)
	}
	if a.Status == "" {
		return a, fmt.Errorf("%s %s: answer without a status field: %s", method, url, raw)
	}
	return a, nil
}

// codiv builds a signed CodivUpload delivery, made this hour (its timestamp is signed, and a
// delivery older than the dedup window is refused as a replay).
func codiv(eventType, id string) (map[string]string, []byte) {
	body := []byte(fmt.Sprintf(`{"event":%q,"id":%q,"timestamp":%q,"data":{"post_id":"post_k8m2v9x1","profile_name":"main","platform":"instagram","platform_post_id":"17891234567890","platform_post_url":"https://instagram.com/p/Cabc123/","scheduled_at":"2026-05-08T14:00:00Z","published_at":"2026-05-08T14:00:42Z"}}`, eventType, id, thisHour()))
	return codivHeaders(eventType, body), body
}

// thisHour is the start of the current hour, RFC 3339: a signed time that stays the same
// across a test's deliveries (mostly) and is never stale.
func thisHour() string { return time.Now().UTC().Truncate(time.Hour).Format(time.RFC3339) }

func codivHeaders(eventType string, body []byte) map[string]string {
	return testkit.CodivHeaders(codivSecret, eventType, body)
}

// standard builds a signed Standard Webhooks delivery, timestamped now.
func standard(id string, body []byte) map[string]string {
	return testkit.StandardHeaders(standardSecret, id, time.Now(), body)
}

// The shared helpers, under the short names this package's tests use.
var (
	readTopic = kafkatest.ReadTopic
	header    = kafkatest.Header
)

func countKey(recs []*kgo.Record, key string) int {
	n := 0
	for _, r := range recs {
		if string(r.Key) == key {
			n++
		}
	}
	return n
}
