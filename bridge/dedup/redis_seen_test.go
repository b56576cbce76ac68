package dedup_test

import (
	"context"
	"testing"
	"time"

	"github.com/socialbridge/bridge/bridge/dedup"
	"github.com/socialbridge/bridge/internal/testenv"
	"github.com/socialbridge/bridge/internal/testkit"
)

// TestRedisSeen: Seen tells an accepted id from one in flight, released or never seen, and
// reserves nothing: an id it was asked about can still be reserved.
func TestRedisSeen(t *testing.T) {
	addr := testenv.Require(t, testenv.Redis)
	s := redisStore(t, addr, dedup.RedisOptions{})
	ctx := context.Background()
	seen := func(id string) bool {
		t.Helper()
		ok, err := s.Seen(ctx, "acme", id)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if seen("never") {
		t.Error("an id never reserved is seen")
	}
	_, done, err := s.Reserve(ctx, "acme", "flying", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if seen("flying") {
		t.Error("an id in flight is seen")
	}
	done(true)
	waitSeen(t, s, "flying")
	if dup, release, err := s.Reserve(ctx, "acme", "never", time.Now()); err != nil || dup {
		t.Errorf("after Seen, Reserve of the same id: dup %v, %v; want it reserved", dup, err)
	} else {
		release(false)
	}
}

// waitSeen waits for done(true)'s mark, which is written in the background.
func waitSeen(t *testing.T, s *dedup.Redis, id string) {
	t.Helper()
	testkit.Eventually(t, 30*time.Second, id+" seen after done(true)", func() bool {
		ok, err := s.Seen(context.Background(), "acme", id)
		return err == nil && ok
	})
}
