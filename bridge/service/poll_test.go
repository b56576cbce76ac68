package service_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
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
	offsets []int // of the pages asked for, in order
}

// asked returns the offsets of the pages asked for since the i-th request.
func (a *resultsAPI) asked(i int) []int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.offsets[min(i, len(a.offsets)):])
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
	a.offsets = append(a.offsets, offset)
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
	var next any
	if offset+limit < len(a.results) {
		next = fmt.Sprintf("/v1/post-results?offset=%d&limit=%d", offset+limit, limit)
	}
	if data == nil {
		data = []map[string]any{}
	}
	json.NewEncoder(w).Encode(map[string]any{"data": data, "meta": map[string]any{"total": len(a.results), "offset": offset, "limit": limit, "next": next}})
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

// TestPostBridgeBacklog: 6,000 results wait at the API when the bridge polls next (an
// outage: 60 pages, more than one round reads), and the bridge is restarted while it works
// them off. Every result is produced exactly once, none skipped, each partition holding its
// results oldest first; the restarted bridge resumes down the listing, where the saved
// cursor says the backlog ends, not from the head.
func TestPostBridgeBacklog(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	api := &resultsAPI{}
	srv := httptest.NewServer(api)
	defer srv.Close()
	cfg := withProviders(t, testConfig(t, brokers), config.Source{
		Name: "postbridge", Provider: "post-bridge", Secrets: []string{postBridgeKey},
		Poll: &config.Poll{BaseURL: srv.URL, Interval: config.Duration(time.Second)},
	})
	// Thousands of one-record batches: lz4 allocates a large block per batch, which the race
	// detector makes cost tens of milliseconds each, producing and reading alike.
	cfg.Kafka.Compression = "none"
	prefix := cfg.Kafka.TopicPrefix
	api.add("before")
	b := start(t, cfg)
	waitFor(t, "the first poll", func() bool { return api.polled() >= 2 })
	const n = 6000
	backlog := make([]string, n)
	for i := range backlog {
		backlog[i] = fmt.Sprintf("r%05d", i)
		if i%7 == 3 {
			backlog[i] += "-failed"
		}
	}
	api.add(backlog...)
	waitForLong(t, "a first part of the backlog produced", 3*time.Minute, func() bool {
		return metricValue(scrape(t, b.url), `bridge_poll_results_total{outcome="produced",source="postbridge"}`) >= 1500
	})
	b.stop(t)

	asked := api.polled()
	b = start(t, cfg)
	waitForLong(t, "the whole backlog in kafka", 5*time.Minute, func() bool { return endOffsets(t, brokers, prefix) >= n })
	b.stop(t)
	if first := api.asked(asked); len(first) == 0 || first[0] == 0 {
		t.Errorf("after the restart the poll asked for offsets %v; want it to resume down the listing", first[:min(5, len(first))])
	}
	checkBacklog(t, brokers, prefix, backlog)
}

// checkBacklog reads the event topics: each of want exactly once, and each partition's
// results in the order of their ids (their age).
func checkBacklog(t *testing.T, brokers []string, prefix string, want []string) {
	t.Helper()
	count := map[string]int{}
	for _, topic := range []string{"post.published", "post.failed"} {
		last := map[int32]string{}
		for _, r := range readTopic(t, brokers, prefix+topic) {
			id := string(r.Key)
			if count[id]++; last[r.Partition] > id {
				t.Fatalf("%s[%d] holds %s after %s: not oldest first", topic, r.Partition, id, last[r.Partition])
			}
			last[r.Partition] = id
		}
	}
	var missing, twice []string
	for _, id := range want {
		switch count[id] {
		case 0:
			missing = append(missing, id)
		case 1:
		default:
			twice = append(twice, id)
		}
	}
	if len(missing) > 0 || len(twice) > 0 || len(count) != len(want) {
		t.Fatalf("of %d results, %d missing (%v…), %d produced more than once (%v…), %d in kafka",
			len(want), len(missing), missing[:min(3, len(missing))], len(twice), twice[:min(3, len(twice))], len(count))
	}
}

// endOffsets sums the end offsets of the event topics a poll writes.
func endOffsets(t *testing.T, brokers []string, prefix string) int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, prefix+"post.published", prefix+"post.failed")
	if err != nil {
		return 0
	}
	var sum int64
	ends.Each(func(o kadm.ListedOffset) { sum += max(0, o.Offset) })
	return sum
}

// metricValue returns the value of the sample named exactly line in a scrape, 0 if none.
func metricValue(scrape, sample string) float64 {
	for line := range strings.Lines(scrape) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), sample+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}

func waitForLong(t *testing.T, what string, limit time.Duration, done func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !done() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", limit, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
