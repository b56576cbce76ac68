package service

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/internal/kafkatest"
	"github.com/socialbridge/bridge/internal/testkit"
	"github.com/socialbridge/bridge/internal/topics"
)

// holdAfterFirstBatch is a fetch hook that holds the client's second batch read until
// release is closed: the rebuild has then read its first batch and no more.
type holdAfterFirstBatch struct {
	once    sync.Once
	batches atomic.Int32
	release chan struct{}
}

func (h *holdAfterFirstBatch) OnFetchBatchRead(kgo.BrokerMetadata, string, int32, kgo.FetchBatchMetrics) {
	if h.batches.Add(1) == 2 {
		<-h.release
	}
}

func (h *holdAfterFirstBatch) let() { h.once.Do(func() { close(h.release) }) }

var recordsRead = regexp.MustCompile(`(\d+) of (\d+) records read`)

// TestRebuildProgressIsShown holds the dedup rebuild after the first of three records, each
// in a batch of its own: the admin listener's /readyz says why it is not ready with "N of M
// records read" (docs/dedup.md), and /metrics shows the rebuild's gauges (docs/http.md) with
// the same figures; once the rebuild goes on, the bridge is ready and the gauges say done.
func TestRebuildProgressIsShown(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	cfg := config.Default()
	cfg.HTTP.Listen, cfg.HTTP.AdminListen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Kafka.Brokers, cfg.Kafka.TopicPrefix, cfg.Kafka.Partitions = brokers, kafkatest.Prefix(t), 2
	cfg.Sources = []config.Source{{Name: "codivupload", Provider: "codivupload", Secrets: []string{"s"}}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	const records = 3
	writeAccepted(t, cfg.Kafka, records)

	hold := &holdAfterFirstBatch{release: make(chan struct{})}
	// One batch a fetch: the broker returns at least one, and no more past the limit.
	slow := Options{RebuildClientOptions: []kgo.Opt{kgo.FetchMaxBytes(1), kgo.FetchMaxPartitionBytes(1), kgo.WithHooks(hold)}}
	logs := &testkit.LogBuffer{}
	begun := time.Now()
	s, err := New(t.Context(), cfg, slog.New(slog.NewTextHandler(logs, nil)), slow)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		s.Shutdown(ctx)
		if t.Failed() {
			t.Logf("the bridge's log:\n%s", logs)
		}
	})
	t.Cleanup(hold.let) // runs first: a held rebuild would hold the shutdown
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	admin := "http://" + s.AdminAddr()

	var body string
	testkit.Eventually(t, time.Minute, "/readyz shows the rebuild's progress", func() bool {
		_, body = fetch(t, admin+"/readyz")
		m := recordsRead.FindStringSubmatch(body)
		return m != nil && m[1] != "0"
	}, func() string { return body })
	code, body := fetch(t, admin+"/readyz")
	m := recordsRead.FindStringSubmatch(body)
	if code != http.StatusServiceUnavailable || m == nil || m[1] != "1" || m[2] != strconv.Itoa(records) {
		t.Fatalf("/readyz while the rebuild holds after one record: %d %s; want 503, 1 of %d records read", code, body, records)
	}
	_, metrics := fetch(t, admin+"/metrics")
	for name, want := range map[string]int{"bridge_dedup_rebuilding": 1, "bridge_dedup_rebuild_read_records": 1, "bridge_dedup_rebuild_records": records} {
		if line := fmt.Sprintf("%s %d", name, want); !strings.Contains(metrics, "\n"+line+"\n") {
			t.Errorf("while rebuilding, /metrics lacks %q", line)
		}
	}

	hold.let()
	testkit.Eventually(t, time.Minute, "ready once the rebuild has read everything", func() bool {
		code, _ := fetch(t, admin+"/readyz")
		return code == http.StatusOK
	})
	// The progress is logged every 5 s (docs/dedup.md, docs/operations.md), so at most once
	// per 5 s the rebuild took: one of three batches that took less logs none.
	const documentedLogEvery = 5 * time.Second
	took := time.Since(begun)
	if !strings.Contains(logs.String(), "dedup rebuilt") {
		t.Errorf("no \"dedup rebuilt\" in the log once ready")
	}
	if n := strings.Count(logs.String(), "dedup rebuild from kafka in progress"); n > int(took/documentedLogEvery) {
		t.Errorf("the progress was logged %d times in a rebuild of %v; at most once every %v", n, took, documentedLogEvery)
	}
	_, metrics = fetch(t, admin+"/metrics")
	for name, want := range map[string]int{"bridge_dedup_rebuilding": 0, "bridge_dedup_rebuild_read_records": records, "bridge_dedup_rebuild_records": records} {
		if line := fmt.Sprintf("%s %d", name, want); !strings.Contains(metrics, "\n"+line+"\n") {
			t.Errorf("after the rebuild, /metrics lacks %q", line)
		}
	}
}

// writeAccepted creates the bridge's topics and writes n records as the ingress writes an
// accepted event, one produce (so one batch) each.
func writeAccepted(t *testing.T, k config.Kafka, n int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := topics.Ensure(ctx, cl, k, nil, topics.Events(k.TopicPrefix)...); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		rec := &kgo.Record{Topic: event.Topic(k.TopicPrefix, event.PostPublished), Partition: int32(i % 2),
			Key: []byte(fmt.Sprintf("evt_rebuild_%d", i)), Value: []byte("{}"),
			Headers: []kgo.RecordHeader{{Key: "source", Value: []byte("codivupload")}}}
		if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

func fetch(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
