package spool_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/socialbridge/bridge/bridge/service"
	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/internal/kafkatest"
	"github.com/socialbridge/bridge/internal/testenv"
	"github.com/socialbridge/bridge/internal/testkit"
)

// TestRedisRemembersSpooledIDs: with dedup.store redis, deliveries spooled while Kafka is down
// stay duplicates after the bridge restarts even if Redis lost their marks (a killed process's
// marks run in the background): the restarted bridge marks the ids it reads back before it
// drains them, so a redelivery once they are in Kafka is not produced again.
func TestRedisRemembersSpooledIDs(t *testing.T) {
	addr := testenv.Require(t, testenv.Redis)
	brokers := kafkatest.Brokers(t)
	prefix := kafkatest.Prefix(t)
	dir := t.TempDir()
	cfg := func(brokers []string) config.Config {
		c := config.Default()
		c.HTTP.Listen, c.HTTP.DrainPeriod = "127.0.0.1:0", 0
		c.Kafka.Brokers, c.Kafka.TopicPrefix = brokers, prefix
		c.Kafka.ProduceTimeout = config.Duration(time.Second)
		c.Kafka.Partitions, c.Kafka.ReplicationFactor = 2, 1
		c.Dedup.Store = config.StoreRedis
		c.Dedup.Redis.Addr, c.Dedup.Redis.KeyPrefix = addr, prefix+"dedup:"
		c.Spool.Dir, c.Spool.HorizonBelow = dir, config.Duration(10*time.Minute)
		c.Sources = []config.Source{{Name: "postiz", Provider: "postiz", Secrets: []string{postizToken}}}
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		return c
	}
	s := newSenders(t)

	down := startService(t, cfg([]string{closedAddr(t)}))
	var names []string
	for range 5 {
		names = append(names, s.expect(down.url, "postiz", "spooled"))
	}
	s.redeliver(down.url, names[0])
	down.stop(t)
	rdb, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{addr}, ForceSingleClient: true, DisableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	ctx := context.Background()
	keys, err := rdb.Do(ctx, rdb.B().Keys().Pattern(prefix+"dedup:*").Build()).AsStrSlice()
	if err != nil || len(keys) != 5 {
		t.Fatalf("redis holds %v (%v); want the 5 spooled ids", keys, err)
	}
	if err := rdb.Do(ctx, rdb.B().Del().Key(keys...).Build()).Error(); err != nil { // lost with a killed process
		t.Fatal(err)
	}

	up := startService(t, cfg(brokers))
	testkit.Eventually(t, time.Minute, "spool drained", func() bool { return up.metric(t, "bridge_spool_records") == 0 })
	for _, name := range names {
		s.redeliver(up.url, name)
	}
	checkTopic(t, s, kafkatest.ReadTopic(t, brokers, event.Topic(prefix, event.PostPublished)))
	if n, _ := rdb.Do(ctx, rdb.B().Exists().Key(keys...).Build()).AsInt64(); n != 5 {
		t.Errorf("%d of the 5 ids marked in redis again", n)
	}
}

// inProcess is a bridge run by the test's own process.
type inProcess struct {
	*service.Service
	url     string
	stopped sync.Once
}

func startService(t *testing.T, cfg config.Config) *inProcess {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	svc, err := service.New(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), service.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Listen(); err != nil {
		t.Fatal(err)
	}
	p := &inProcess{Service: svc, url: "http://" + svc.Addr()}
	t.Cleanup(func() { p.stop(t) })
	return p
}

// stop shuts p down gracefully, once.
func (p *inProcess) stop(t *testing.T) {
	p.stopped.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := p.Shutdown(ctx); err != nil {
			t.Logf("shutdown: %v", err)
		}
	})
}

func (p *inProcess) metric(t *testing.T, name string) float64 {
	return (&child{url: p.url}).metric(t, name)
}
