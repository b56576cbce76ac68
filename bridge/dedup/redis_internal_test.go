package dedup

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/socialbridge/bridge/internal/testenv"
	"github.com/socialbridge/bridge/internal/testkit"
)

func leaseStore(t *testing.T) (*Redis, *testkit.LogBuffer) {
	t.Helper()
	addr := testenv.Require(t, testenv.Redis)
	var raw [6]byte
	_, _ = rand.Read(raw[:])
	logs := &testkit.LogBuffer{}
	r := NewRedis(&redis.Options{Addr: addr}, RedisOptions{
		KeyPrefix: "test:lease:" + hex.EncodeToString(raw[:]) + ":", Window: time.Hour, Lease: time.Hour,
		Log: slog.New(slog.NewTextHandler(logs, nil)),
	})
	t.Cleanup(func() { _ = r.Close(context.Background()) })
	return r, logs
}

// heldCopy copies the reservations to renew, as renewAll does before its scripts run.
func heldCopy(r *Redis) (keys, tokens []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, h := range r.held {
		keys, tokens = append(keys, k), append(tokens, h.token)
	}
	return keys, tokens
}

const producedTwice = "may be produced twice"

// TestRenewAfterSettle: a settle that marks or releases the key between the renewer's copy
// of the reservations and its script is no lost reservation, and is not reported as one.
func TestRenewAfterSettle(t *testing.T) {
	for _, accepted := range []bool{true, false} {
		r, logs := leaseStore(t)
		_, done, err := r.Reserve(context.Background(), "acme", "e1", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		keys, tokens := heldCopy(r)
		done(accepted)
		r.bg.Wait() // the settle is over: the key is "s", or gone
		r.renew(keys, tokens)
		if strings.Contains(logs.String(), producedTwice) {
			t.Errorf("accepted=%v: the renewal after a settle warned: %s", accepted, logs)
		}
	}
}

// TestRenewWhileSettling: the settle has sent its command but not yet stopped the renewals.
func TestRenewWhileSettling(t *testing.T) {
	r, logs := leaseStore(t)
	_, _, err := r.Reserve(context.Background(), "acme", "e1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	keys, tokens := heldCopy(r)
	r.settling(keys[0], tokens[0], true)
	if err := r.upkeep.Set(context.Background(), keys[0], seenValue, time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	r.renew(keys, tokens)
	if strings.Contains(logs.String(), producedTwice) {
		t.Errorf("the renewal while its settle was marking warned: %s", logs)
	}
}

// TestRenewLostReservation: a reservation that expired (the key gone, or taken by another
// replica's token) while its record was unsettled is reported.
func TestRenewLostReservation(t *testing.T) {
	for name, lose := range map[string]func(c *redis.Client, key string) error{
		"expired": func(c *redis.Client, key string) error { return c.Del(context.Background(), key).Err() },
		"taken": func(c *redis.Client, key string) error {
			return c.Set(context.Background(), key, "r:another-replica:1", time.Hour).Err()
		},
		"marked by another replica": func(c *redis.Client, key string) error {
			return c.Set(context.Background(), key, seenValue, time.Hour).Err()
		},
	} {
		t.Run(name, func(t *testing.T) {
			r, logs := leaseStore(t)
			_, done, err := r.Reserve(context.Background(), "acme", "e1", time.Now())
			if err != nil {
				t.Fatal(err)
			}
			defer done(false)
			keys, tokens := heldCopy(r)
			if err := lose(r.upkeep, keys[0]); err != nil {
				t.Fatal(err)
			}
			r.renew(keys, tokens)
			if !strings.Contains(logs.String(), producedTwice) {
				t.Errorf("a lost reservation was not reported: %q", logs)
			}
		})
	}
}
