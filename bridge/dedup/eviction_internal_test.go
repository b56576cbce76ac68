package dedup

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/socialbridge/bridge/internal/redisserver"
	"github.com/socialbridge/bridge/internal/testenv"
	"github.com/socialbridge/bridge/internal/testkit"
)

// TestCheckEviction asks real servers for their eviction policy: noeviction passes quietly,
// any policy that may evict keys with a TTL (every dedup key has one) is warned about, and a
// server that refuses CONFIG GET is reported as not checked.
func TestCheckEviction(t *testing.T) {
	shared := testenv.Require(t, testenv.Redis)
	cases := []struct {
		name   string
		addr   func(t *testing.T) string
		policy string // "" when it cannot be read
		warn   string // in the log; "" for none
	}{
		{"noeviction", func(*testing.T) string { return shared }, "noeviction", ""},
		{"allkeys-lru", func(t *testing.T) string {
			return redisserver.Require(t, "--maxmemory-policy", "allkeys-lru", "--maxmemory", "100mb").Addr()
		}, "allkeys-lru", "maxmemory-policy=allkeys-lru"},
		{"volatile-ttl", func(t *testing.T) string {
			return redisserver.Require(t, "--maxmemory-policy", "volatile-ttl").Addr()
		}, "volatile-ttl", "maxmemory-policy=volatile-ttl"},
		{"config renamed away", func(t *testing.T) string {
			return redisserver.Require(t, "--rename-command", "CONFIG", "").Addr()
		}, "", "could not be checked"},
		{"config not permitted", func(t *testing.T) string {
			return redisserver.Require(t, "--user", "default", "on", "nopass", "~*", "&*", "+@all", "-config").Addr()
		}, "", "could not be checked"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			logs := &testkit.LogBuffer{}
			r := NewRedis(&redis.Options{Addr: c.addr(t)}, RedisOptions{Window: time.Hour, Lease: time.Second,
				Log: slog.New(slog.NewTextHandler(logs, nil))})
			defer r.Close(context.Background())
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if got := r.CheckEviction(ctx); got != c.policy {
				t.Errorf("policy %q, want %q", got, c.policy)
			}
			switch out := logs.String(); {
			case c.warn == "" && out != "":
				t.Errorf("logged %q, want nothing", out)
			case c.warn != "" && (!strings.Contains(out, c.warn) || !strings.Contains(out, "level=WARN")):
				t.Errorf("logged %q, want a warning with %q", out, c.warn)
			}
		})
	}
}
