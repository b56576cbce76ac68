package dedup

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/socialbridge/bridge/internal/testenv"
	"github.com/socialbridge/bridge/internal/testkit"
)

func leaseStore(t *testing.T) (*Redis, *testkit.LogBuffer) {
	t.Helper()
	addr := testenv.Require(t, testenv.Redis)
	var raw [6]byte
	_, _ = rand.Read(raw[:])
	logs := &testkit.LogBuffer{}
	r := NewRedis(RedisOptions{Addr: addr,
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
		if held, _ := heldCopy(r); len(held) != 0 {
			t.Errorf("accepted=%v: the settled reservation is still renewed: %q", accepted, held)
		}
		if strings.Contains(logs.String(), "failed") {
			t.Errorf("accepted=%v: a settle that succeeded warned: %s", accepted, logs)
		}
		r.renew(keys, tokens)
		if strings.Contains(logs.String(), producedTwice) {
			t.Errorf("accepted=%v: the renewal after a settle warned: %s", accepted, logs)
		}
	}
}

// TestRenewWhileSettling: the settle has sent its command but not yet stopped the renewals.
// The renewal finds the key marked by that settle, or released by it, or (a reservation lost
// before its mark reached Redis) taken by another replica's token: only the last is reported.
func TestRenewWhileSettling(t *testing.T) {
	for _, c := range []struct {
		name     string
		accepted bool
		now      string // the key's value when the renewal runs; "" is gone
		warns    bool
	}{
		{"marked by its settle", true, seenValue, false},
		{"released by its settle", false, "", false},
		{"gone while its mark is sent", true, "", false},
		{"taken by another replica while its mark is sent", true, "r:another-replica:1", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, logs := leaseStore(t)
			_, _, err := r.Reserve(context.Background(), "acme", "e1", time.Now())
			if err != nil {
				t.Fatal(err)
			}
			keys, tokens := heldCopy(r)
			r.mu.Lock()
			r.settling(settle{key: keys[0], token: tokens[0], accepted: c.accepted})
			r.mu.Unlock()
			if c.now == "" {
				err = r.upkeep.Do(context.Background(), r.upkeep.B().Del().Key(keys[0]).Build()).Error()
			} else {
				err = set(r.upkeep, keys[0], c.now)
			}
			if err != nil {
				t.Fatal(err)
			}
			r.renew(keys, tokens)
			if got := strings.Contains(logs.String(), producedTwice); got != c.warns {
				t.Errorf("warned %v, want %v: %s", got, c.warns, logs)
			}
			if held, _ := heldCopy(r); len(held) != 0 {
				t.Errorf("the renewal kept renewing a changed key: %q", held)
			}
		})
	}
}

// TestRenewLostReservation: a reservation that expired (the key gone, or taken by another
// replica's token) while its record was unsettled is reported.
func TestRenewLostReservation(t *testing.T) {
	for name, lose := range map[string]func(c rueidis.Client, key string) error{
		"expired": func(c rueidis.Client, key string) error {
			return c.Do(context.Background(), c.B().Del().Key(key).Build()).Error()
		},
		"taken":                     func(c rueidis.Client, key string) error { return set(c, key, "r:another-replica:1") },
		"marked by another replica": func(c rueidis.Client, key string) error { return set(c, key, seenValue) },
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

// set sets key to v for an hour, behind the store's back.
func set(c rueidis.Client, key, v string) error {
	return c.Do(context.Background(), c.B().Set().Key(key).Value(v).Px(time.Hour).Build()).Error()
}

// TestReserveOwnsItsRetriedSet: a reservation whose SET was applied on a connection that then
// broke finds its own token when sent again, and owns the key; it does not wait for "another
// replica" until its deadline.
func TestReserveOwnsItsRetriedSet(t *testing.T) {
	r, _ := leaseStore(t)
	key := r.prefix + "acme:e1"
	next := r.owner + strconv.FormatUint(r.seq.Load()+1, 36)
	if err := set(r.upkeep, key, next); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dup, done, err := r.Reserve(ctx, "acme", "e1", time.Now())
	if err != nil || dup {
		t.Fatalf("Reserve = dup %v, err %v; want the key owned", dup, err)
	}
	done(true)
	if dup, _, err := r.Reserve(ctx, "acme", "e1", time.Now()); err != nil || !dup {
		t.Fatalf("after the mark, Reserve = dup %v, err %v; want a duplicate", dup, err)
	}
}

// TestNewRedisNeedsAPositiveWindowAndLease: a zero window or lease is a programming error,
// refused at once rather than a store that forgets every id or loses every reservation.
func TestNewRedisNeedsAPositiveWindowAndLease(t *testing.T) {
	for name, o := range map[string]RedisOptions{
		"zero window": {Addr: "127.0.0.1:1", Lease: time.Second},
		"zero lease":  {Addr: "127.0.0.1:1", Window: time.Hour},
		"no address":  {Window: time.Hour, Lease: time.Second},
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("NewRedis did not panic")
				}
			}()
			r := NewRedis(o)
			_ = r.Close(context.Background())
		})
	}
}
