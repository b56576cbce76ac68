package service_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/internal/kafkatest"
	"github.com/socialbridge/bridge/internal/redisserver"
	"github.com/socialbridge/bridge/internal/testenv"
	"github.com/socialbridge/bridge/internal/testkit"
)

// TestStartDoesNotWaitForKafkaHistory starts a bridge while Kafka is down, so its dedup
// rebuild cannot run: it serves /healthz at once, /readyz says why it is not ready, and a
// delivery is answered 503 (never accepted before the window is known). Once Kafka is back
// the rebuild is retried and finishes, and deliveries are accepted; one accepted before the
// restart is still a duplicate.
func TestStartDoesNotWaitForKafkaHistory(t *testing.T) {
	broker := kafkatest.StartBroker(t)
	brokers := []string{broker.Addr()}
	cfg := testConfig(t, brokers)
	first := start(t, cfg)
	h, body := codiv("post.published", "evt_before_restart")
	if a := send(t, httpClient, "POST", first.url+"/webhooks/codivupload", h, body); a.Status != "accepted" {
		t.Fatalf("before the restart: %+v", a)
	}
	first.stop(t)
	broker.Stop()

	cfg.Kafka.CreateTopics = false // else the start itself needs Kafka
	b := launch(t, cfg)
	if a := send(t, httpClient, "GET", b.url+"/healthz", nil, nil); a.Code != 200 {
		t.Fatalf("healthz while rebuilding: %+v", a)
	}
	if a := send(t, httpClient, "GET", b.url+"/readyz", nil, nil); a.Code != 503 {
		t.Fatalf("readyz while rebuilding: %+v", a)
	}
	if err := b.WaitDedup(shortContext(t)); err == nil || !strings.Contains(err.Error(), "dedup: rebuilding") {
		t.Fatalf("the dedup store while Kafka is down: %v; want it rebuilding", err)
	}
	h2, body2 := codiv("post.published", "evt_during_rebuild")
	a := send(t, httpClient, "POST", b.url+"/webhooks/codivupload", h2, body2)
	if a.Code != 503 || a.Header.Get("Retry-After") == "" || !strings.Contains(a.Error, "rebuilt") {
		t.Fatalf("a delivery while rebuilding: %+v; want 503 with Retry-After", a)
	}

	broker.Start()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := b.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	if a := send(t, httpClient, "POST", b.url+"/webhooks/codivupload", h, body); a.Status != "duplicate" {
		t.Fatalf("after the rebuild, the event accepted before the restart: %+v; want duplicate", a)
	}
	if a := send(t, httpClient, "POST", b.url+"/webhooks/codivupload", h2, body2); a.Status != "accepted" {
		t.Fatalf("after the rebuild: %+v", a)
	}
	if !strings.Contains(b.logs.String(), "dedup rebuild from kafka failed; retrying") {
		t.Error("the failed rebuild attempts were not logged")
	}
}

// redisConfig is testConfig with the redis store on addr, under a key prefix of the test's.
func redisConfig(t *testing.T, brokers []string, addr string) config.Config {
	cfg := testConfig(t, brokers)
	var raw [6]byte
	_, _ = rand.Read(raw[:])
	cfg.Dedup.Store = config.StoreRedis
	cfg.Dedup.Redis.Addr = addr
	cfg.Dedup.Redis.KeyPrefix = "test:" + t.Name() + ":" + hex.EncodeToString(raw[:]) + ":"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestTwoReplicasShareRedis sends every delivery of an event to one of two bridges sharing
// Redis, first in turn, then all at once: the event is accepted once, in Kafka once.
func TestTwoReplicasShareRedis(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	cfg := redisConfig(t, brokers, testenv.Require(t, testenv.Redis))
	replicas := []*bridge{start(t, cfg), start(t, cfg)}

	h, body := codiv("post.published", "evt_replicas")
	if a := send(t, httpClient, "POST", replicas[0].url+"/webhooks/codivupload", h, body); a.Status != "accepted" {
		t.Fatalf("first delivery: %+v", a)
	}
	if a := send(t, httpClient, "POST", replicas[1].url+"/webhooks/codivupload", h, body); a.Status != "duplicate" {
		t.Fatalf("redelivery to the other replica: %+v", a)
	}

	h, body = codiv("post.published", "evt_replicas_concurrent")
	statuses := make(chan string, 20)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			a := send(t, httpClient, "POST", replicas[i%2].url+"/webhooks/codivupload", h, body)
			statuses <- fmt.Sprintf("%d %s", a.Code, a.Status)
		})
	}
	wg.Wait()
	close(statuses)
	count := map[string]int{}
	for s := range statuses {
		count[s]++
	}
	if count["200 accepted"] != 1 || count["200 duplicate"] != 19 {
		t.Fatalf("20 concurrent deliveries to two replicas answered %v; want 1 accepted and 19 duplicates", count)
	}
	recs := readTopic(t, brokers, cfg.Kafka.TopicPrefix+"post.published")
	for _, id := range []string{"evt_replicas", "evt_replicas_concurrent"} {
		if n := countKey(recs, id); n != 1 {
			t.Errorf("%s is in kafka %d times", id, n)
		}
	}
}

// TestRedisEvictionWarned: a bridge on a Redis whose maxmemory-policy may evict keys says so
// at start.
func TestRedisEvictionWarned(t *testing.T) {
	srv := redisserver.Require(t, "--maxmemory-policy", "allkeys-lru")
	b := start(t, redisConfig(t, kafkatest.Brokers(t), srv.Addr()))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for !strings.Contains(b.logs.String(), "maxmemory-policy=allkeys-lru") {
		select {
		case <-ctx.Done():
			t.Fatalf("no warning about the eviction policy in the log:\n%s", b.logs)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestRedisDown: with Redis gone, deliveries are answered 503 (nothing is produced without a
// reservation) and /readyz says so; once Redis is back, they are accepted, and an event
// accepted before is still a duplicate (Redis persisted it).
func TestRedisDown(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	srv := redisserver.Require(t)
	cfg := redisConfig(t, brokers, srv.Addr())
	b := start(t, cfg)
	hook := b.url + "/webhooks/codivupload"
	h, body := codiv("post.published", "evt_before_redis_down")
	if a := send(t, httpClient, "POST", hook, h, body); a.Status != "accepted" {
		t.Fatalf("before: %+v", a)
	}
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	h2, body2 := codiv("post.published", "evt_redis_down")
	a := send(t, httpClient, "POST", hook, h2, body2)
	if a.Code != 503 || a.Header.Get("Retry-After") == "" || !strings.Contains(a.Error, "redis") {
		t.Fatalf("while redis is down: %+v; want 503 naming redis", a)
	}
	testkit.Eventually(t, 30*time.Second, "readyz to say redis is down", func() bool { return send(t, httpClient, "GET", b.url+"/readyz", nil, nil).Code == 503 })
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 30*time.Second, "readyz once redis is back", func() bool { return send(t, httpClient, "GET", b.url+"/readyz", nil, nil).Code == 200 })
	if a := send(t, httpClient, "POST", hook, h, body); a.Status != "duplicate" {
		t.Fatalf("after redis came back, the event accepted before: %+v", a)
	}
	if a := send(t, httpClient, "POST", hook, h2, body2); a.Status != "accepted" {
		t.Fatalf("after redis came back: %+v", a)
	}
	recs := readTopic(t, brokers, cfg.Kafka.TopicPrefix+"post.published")
	if n := countKey(recs, "evt_redis_down"); n != 1 {
		t.Fatalf("evt_redis_down is in kafka %d times", n)
	}
}

// TestWindowShorterThanHorizonWarns: a source whose own window is shorter than its sender's
// retry horizon is warned about at start.
func TestWindowShorterThanHorizonWarns(t *testing.T) {
	cfg := testConfig(t, kafkatest.Brokers(t))
	cfg.Sources[1].Dedup.Window = config.Duration(time.Hour) // acme, standard-webhooks: 76 h
	b := start(t, cfg)
	if !strings.Contains(b.logs.String(), "shorter than its sender's retry horizon") {
		t.Fatalf("no warning in the log:\n%s", b.logs.String())
	}
}

// TestRestartFromSnapshot: with dedup.snapshot, a graceful stop saves the memory store, and the
// next start reads it back plus only the records Kafka received since, and still answers the
// event accepted before "duplicate".
func TestRestartFromSnapshot(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	cfg := testConfig(t, brokers)
	cfg.Dedup.Snapshot = filepath.Join(t.TempDir(), "dedup.snapshot")
	first := start(t, cfg)
	h, body := codiv("post.published", "evt_snapshot")
	if a := send(t, httpClient, "POST", first.url+"/webhooks/codivupload", h, body); a.Status != "accepted" {
		t.Fatalf("before the restart: %+v", a)
	}
	first.stop(t)
	if _, err := os.Stat(cfg.Dedup.Snapshot); err != nil {
		t.Fatalf("no snapshot after a graceful stop: %v", err)
	}
	second := start(t, cfg)
	if a := send(t, httpClient, "POST", second.url+"/webhooks/codivupload", h, body); a.Status != "duplicate" {
		t.Fatalf("after the restart: %+v; want duplicate", a)
	}
	if !regexp.MustCompile(`"dedup rebuilt" ids=1 from_snapshot=1 `).MatchString(second.logs.String()) {
		t.Errorf("the rebuild did not start from the snapshot:\n%s", second.logs.String())
	}
	// A snapshot that was used, with the windows it was written under, is warned of in no
	// way; a graceful stop logs no error.
	second.stop(t)
	for _, b := range []*bridge{first, second} {
		for _, bad := range []string{"level=ERROR", "dedup snapshot not used", "snapshot written under other windows"} {
			if strings.Contains(b.logs.String(), bad) {
				t.Errorf("%q in a bridge's log:\n%s", bad, b.logs)
			}
		}
	}
}

func shortContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	t.Cleanup(cancel)
	return ctx
}
