package service_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/bridge/poll"
	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/internal/kafkatest"
)

const postBridgeKey = "pb_live_service_test"

// resultsAPI serves GET /v1/post-results as Post-Bridge documents it: {"data": [...],
// "meta": {...}}, newest first, paged, behind the API key.
type resultsAPI struct {
	mu      sync.Mutex
	results []string // oldest first; an id ending in "-failed" is a failure
	polls   int
}

func (a *resultsAPI) add(ids ...string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.results = append(a.results, ids...)
}

func (a *resultsAPI) polled() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.polls
}

func (a *resultsAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer "+postBridgeKey || r.URL.Path != "/v1/post-results" {
		http.Error(w, `{"message":"API key not found"}`, http.StatusUnauthorized)
		return
	}
	a.polls++
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	offset, _ := strconv.Atoi(r.URL.Query().Get("offset"))
	var data []map[string]any
	for i := len(a.results) - 1 - offset; i >= 0 && len(data) < limit; i-- {
		id := a.results[i]
		ok := !strings.HasSuffix(id, "-failed")
		result := map[string]any{"id": id, "post_id": "post_" + id, "success": ok, "social_account_id": 7, "platform": "tiktok",
			"created_at": "2026-01-01T00:00:00Z", "platform_data": map[string]any{"id": "tt_" + id, "url": "https://tiktok.com/@brand/video/" + id, "username": "brand"}}
		if !ok {
			result["error"] = map[string]any{"code": "rate_limited", "message": "TikTok rate limit reached"}
		}
		data = append(data, result)
	}
	json.NewEncoder(w).Encode(map[string]any{"data": data, "meta": map[string]any{"total": len(a.results), "offset": offset, "limit": limit, "next": nil}})
}

// TestPostBridgePolled polls a local Post-Bridge API through the whole bridge on the real
// broker: results after the first poll become events on the usual topics; a restarted
// bridge resumes from the cursor it keeps in Kafka; and results read again, as after a
// crash between producing and saving the cursor, are dropped as duplicates by their id.
func TestPostBridgePolled(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	api := &resultsAPI{}
	srv := httptest.NewServer(api)
	defer srv.Close()
	cfg := withProviders(t, testConfig(t, brokers), config.Source{
		Name: "postbridge", Provider: "post-bridge", Secrets: []string{"pb_live_old_key", postBridgeKey},
		Poll: &config.Poll{BaseURL: srv.URL, Interval: config.Duration(time.Second)},
	})
	prefix := cfg.Kafka.TopicPrefix
	api.add("before1", "before2")

	b := start(t, cfg)
	waitFor(t, "the first poll", func() bool { return api.polled() >= 2 })
	api.add("r1", "r2-failed")
	waitFor(t, "r1 and r2 in kafka", func() bool { return len(resultIDs(t, brokers, prefix)) == 2 })
	b.stop(t)

	api.add("r3")
	b = start(t, cfg)
	waitFor(t, "r3 in kafka", func() bool { return len(resultIDs(t, brokers, prefix)) == 3 })
	b.stop(t)

	rewindCursor(t, brokers, prefix, "before2", "before1") // as if no save had happened since the first poll
	api.add("r4")
	b = start(t, cfg)
	waitFor(t, "r4 in kafka", func() bool { return len(resultIDs(t, brokers, prefix)) == 4 })
	waitFor(t, "the re-read results answered as duplicates", func() bool {
		return strings.Contains(scrape(t, b.url), `bridge_dedup_hits_total{source="postbridge"} 3`)
	})
	b.stop(t)

	if got, want := resultIDs(t, brokers, prefix), []string{"r1", "r2-failed", "r3", "r4"}; !slices.Equal(got, want) {
		t.Fatalf("topics hold %v, want each result after the first poll exactly once: %v", got, want)
	}
	failed := only(t, readTopic(t, brokers, prefix+"post.failed"))
	got := decode(t, "single-object", nil, prefix+"post.failed", "post.failed", failed.Value)
	wantFields(t, got, map[string]any{"event_id": "r2-failed", "source": "postbridge", "provider": "post-bridge", "error_code": "rate_limited", "platform": "tiktok", "post_id": "post_r2-failed"})
	if strings.Contains(b.logs.String(), postBridgeKey) {
		t.Fatal("the API key is in the log")
	}
}

// resultIDs lists the event ids in the published and failed topics, sorted.
func resultIDs(t *testing.T, brokers []string, prefix string) []string {
	t.Helper()
	var out []string
	for _, topic := range []string{"post.published", "post.failed"} {
		for _, r := range readTopic(t, brokers, prefix+topic) {
			out = append(out, string(r.Key))
		}
	}
	slices.Sort(out)
	return out
}

func rewindCursor(t *testing.T, brokers []string, prefix string, seen ...string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := poll.NewKafkaCursors(cl, prefix).Save(ctx, "postbridge", poll.Cursor{Started: true, Seen: seen}); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, what string, done func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !done() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 30s for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
