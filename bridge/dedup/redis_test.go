package dedup_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/socialbridge/bridge/bridge/dedup"
	"github.com/socialbridge/bridge/bridge/failure"
	"github.com/socialbridge/bridge/internal/redisserver"
	"github.com/socialbridge/bridge/internal/testenv"
)

// prefix returns a key prefix unique to the test, so that tests share a server safely.
func prefix(t *testing.T) string {
	var raw [6]byte
	_, _ = rand.Read(raw[:])
	return "test:" + strings.ReplaceAll(t.Name(), "/", "-") + ":" + hex.EncodeToString(raw[:]) + ":"
}

// redisStore returns a Redis store at addr under o.KeyPrefix (unique to the test when empty),
// with o's windows and lease (an hour and 10 s when zero), closed at cleanup.
func redisStore(t *testing.T, addr string, o dedup.RedisOptions) *dedup.Redis {
	t.Helper()
	if o.Window == 0 {
		o.Window = window
	}
	if o.Lease == 0 {
		o.Lease = 10 * time.Second
	}
	if o.KeyPrefix == "" {
		o.KeyPrefix = prefix(t)
	}
	o.Addr = addr
	s := dedup.NewRedis(o)
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

// inspector is a client that reads and writes the keys of a store behind its back.
func inspector(t *testing.T, addr string) rueidis.Client {
	t.Helper()
	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{addr}, ForceSingleClient: true, DisableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func TestRedisConformance(t *testing.T) {
	addr := testenv.Require(t, testenv.Redis)
	testReserver(t, func(t *testing.T) dedup.Reserver {
		return redisStore(t, addr, dedup.RedisOptions{})
	})
}

// TestRedisWindows: an accepted id is a duplicate for its source's window, then forgotten.
func TestRedisWindows(t *testing.T) {
	addr := testenv.Require(t, testenv.Redis)
	s := redisStore(t, addr, dedup.RedisOptions{Window: 300 * time.Millisecond,
		Windows: map[string]time.Duration{"meta": time.Hour}})
	for _, source := range []string{"acme", "meta"} {
		_, done, err := s.Reserve(context.Background(), source, "e1", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		done(true)
	}
	for _, source := range []string{"acme", "meta"} {
		if dup, _, _ := reserveSource(s, source, "e1"); !dup {
			t.Fatalf("%s/e1 right after it was accepted: not a duplicate", source)
		}
	}
	time.Sleep(600 * time.Millisecond)
	if dup, done, _ := reserveSource(s, "acme", "e1"); dup {
		t.Fatal("acme/e1 is still a duplicate after its window")
	} else {
		done(false)
	}
	if dup, _, _ := reserveSource(s, "meta", "e1"); !dup {
		t.Fatal("meta/e1 was forgotten before its own window")
	}
}

// TestRedisLeaseRenewed: an owner that holds an id for several leases (a record Kafka has not
// settled) keeps it: nobody else may take it meanwhile.
func TestRedisLeaseRenewed(t *testing.T) {
	addr := testenv.Require(t, testenv.Redis)
	s := redisStore(t, addr, dedup.RedisOptions{Lease: 300 * time.Millisecond})
	_, done, err := s.Reserve(context.Background(), "acme", "e1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	if _, _, err := s.Reserve(ctx, "acme", "e1", time.Now()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Reserve of an id held past its lease: err = %v, want a wait that times out", err)
	}
	done(true)
	if dup, _, err := reserveSource(s, "acme", "e1"); !dup || err != nil {
		t.Fatalf("after the late settle: dup=%v err=%v", dup, err)
	}
}

// TestRedisDeadOwner: a reservation whose owner died (nobody renews it) blocks its id until
// its lease expires, then the next delivery owns it. This is the documented residual risk.
func TestRedisDeadOwner(t *testing.T) {
	addr := testenv.Require(t, testenv.Redis)
	p := prefix(t)
	s := redisStore(t, addr, dedup.RedisOptions{KeyPrefix: p})
	inspect := inspector(t, addr)
	if err := inspect.Do(context.Background(), inspect.B().Set().Key(p+"acme:e1").Value("r:dead-replica:1").Px(500*time.Millisecond).Build()).Error(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	dup, done, err := reserveSource(s, "acme", "e1")
	if dup || err != nil {
		t.Fatalf("after the dead owner's lease: dup=%v err=%v", dup, err)
	}
	if waited := time.Since(start); waited < 300*time.Millisecond {
		t.Fatalf("took the id after %v, before the dead owner's lease expired", waited)
	}
	done(true)
}

// TestRedisUnreachable: with no Redis to ask, Reserve fails at once as Unavailable (a 503),
// and nothing is owned.
func TestRedisUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	s := dedup.NewRedis(dedup.RedisOptions{Addr: addr, Window: window, Lease: time.Second})
	defer s.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	dup, done, err := s.Reserve(ctx, "acme", "e1", time.Now())
	if dup || done != nil || failure.KindOf(err) != failure.Unavailable {
		t.Fatalf("Reserve without redis: dup=%v done!=nil=%v err=%v; want an Unavailable failure", dup, done != nil, err)
	}
}

// TestRedisMarkSurvivesRestart kills Redis between the reservation and Kafka's ack: the mark
// is retried until Redis is back, and the id is then a duplicate on any replica.
func TestRedisMarkSurvivesRestart(t *testing.T) {
	srv := redisserver.Require(t)
	p := prefix(t)
	s := redisStore(t, srv.Addr(), dedup.RedisOptions{KeyPrefix: p})
	other := redisStore(t, srv.Addr(), dedup.RedisOptions{KeyPrefix: p}) // another replica
	_, done, err := s.Reserve(context.Background(), "acme", "e1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	done(true) // Kafka acknowledged while Redis was down
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, _, err := other.Reserve(ctx, "acme", "e2", time.Now()); failure.KindOf(err) != failure.Unavailable {
		t.Fatalf("Reserve while redis is down: err = %v, want Unavailable", err)
	}
	time.Sleep(500 * time.Millisecond)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	if dup, _, err := reserveSource(other, "acme", "e1"); !dup || err != nil {
		t.Fatalf("after redis came back: dup=%v err=%v; want the retried mark to make it a duplicate", dup, err)
	}
}

func reserveSource(s dedup.Reserver, source, id string) (bool, func(bool), error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return s.Reserve(ctx, source, id, time.Now())
}
