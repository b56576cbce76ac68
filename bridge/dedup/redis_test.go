package dedup_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/socialbridge/bridge/bridge/dedup"
	"github.com/socialbridge/bridge/bridge/failure"
	"github.com/socialbridge/bridge/internal/redisserver"
	"github.com/socialbridge/bridge/internal/testenv"
	"github.com/socialbridge/bridge/internal/testkit"
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
	t.Cleanup(func() {
		// Bounded: a test that failed with a mark still owed must end, not hang on it.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = s.Close(ctx)
	})
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

// pttl is the time key has left to live, as Redis reports it (negative: no key or no TTL).
func pttl(c rueidis.Client, key string) (time.Duration, error) {
	ms, err := c.Do(context.Background(), c.B().Pttl().Key(key).Build()).AsInt64()
	return time.Duration(ms) * time.Millisecond, err
}

func TestRedisConformance(t *testing.T) {
	addr := testenv.Require(t, testenv.Redis)
	testReserver(t, func(t *testing.T) dedup.Reserver {
		return redisStore(t, addr, dedup.RedisOptions{})
	})
}

// TestRedisWindows: an accepted id is a duplicate for its source's window, then forgotten.
// Redis's TTLs say each source's window, and the id of the short one is waited for until it
// is gone (no sleep standing in for "expired", no check racing a short window).
func TestRedisWindows(t *testing.T) {
	addr := testenv.Require(t, testenv.Redis)
	p := prefix(t)
	const short = 3 * time.Second
	s := redisStore(t, addr, dedup.RedisOptions{KeyPrefix: p, Window: short,
		Windows: map[string]time.Duration{"meta": time.Hour}})
	inspect := inspector(t, addr)
	for _, source := range []string{"acme", "meta"} {
		_, done, err := s.Reserve(context.Background(), source, "e1", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		done(true)
		testkit.Eventually(t, 30*time.Second, source+"/e1 marked seen", func() bool {
			ok, err := s.Seen(context.Background(), source, "e1")
			return err == nil && ok
		})
	}
	ttl := func(source string) time.Duration {
		d, err := pttl(inspect, p+source+":e1")
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	if d := ttl("acme"); d <= 0 || d > short {
		t.Fatalf("acme/e1 is kept for %v, want its window (%v) at most", d, short)
	}
	if d := ttl("meta"); d <= short || d > time.Hour {
		t.Fatalf("meta/e1 is kept for %v, want its own window (1h), longer than acme's", d)
	}
	testkit.Eventually(t, 30*time.Second, "acme/e1 forgotten after its window", func() bool {
		ok, err := s.Seen(context.Background(), "acme", "e1")
		return err == nil && !ok
	})
	if dup, done, err := reserveSource(s, "acme", "e1"); dup || err != nil {
		t.Fatalf("acme/e1 after its window: dup=%v err=%v; want it reserved anew", dup, err)
	} else {
		done(false)
	}
	if dup, _, _ := reserveSource(s, "meta", "e1"); !dup {
		t.Fatal("meta/e1 was forgotten before its own window")
	}
}

// TestRedisLeaseRenewed: an owner that holds an id for several leases (a record Kafka has not
// settled) keeps it: nobody else may take it meanwhile. The positive signal that the first
// lease is over: the key's TTL seen renewed twice, and a lease gone by since the reservation.
func TestRedisLeaseRenewed(t *testing.T) {
	addr := testenv.Require(t, testenv.Redis)
	p := prefix(t)
	const lease = 3 * time.Second
	s := redisStore(t, addr, dedup.RedisOptions{KeyPrefix: p, Lease: lease})
	inspect := inspector(t, addr)
	reserved := time.Now()
	_, done, err := s.Reserve(context.Background(), "acme", "e1", reserved)
	if err != nil {
		t.Fatal(err)
	}
	token, err := inspect.Do(context.Background(), inspect.B().Get().Key(p+"acme:e1").Build()).ToString()
	if err != nil {
		t.Fatal(err)
	}
	renewals, last := 0, lease
	testkit.Eventually(t, time.Minute, "the reservation renewed twice, and held past its first lease", func() bool {
		d, err := pttl(inspect, p+"acme:e1")
		if err != nil || d <= 0 {
			t.Fatalf("the reservation is gone from redis (ttl %v, %v) while its owner holds it", d, err)
		}
		if d > last {
			renewals++
		}
		last = d
		return renewals >= 2 && time.Since(reserved) > lease
	})
	if now, err := inspect.Do(context.Background(), inspect.B().Get().Key(p+"acme:e1").Build()).ToString(); err != nil || now != token {
		t.Fatalf("after its first lease the key holds %q (%v), want the owner's token %q", now, err, token)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
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
	const dead = "r:dead-replica:1"
	if err := inspect.Do(context.Background(), inspect.B().Set().Key(p+"acme:e1").Value(dead).Px(time.Minute).Build()).Error(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, _, err := s.Reserve(ctx, "acme", "e1", time.Now()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Reserve while the dead owner's lease runs: err = %v, want a wait that times out", err)
	}
	if err := inspect.Do(context.Background(), inspect.B().Pexpire().Key(p+"acme:e1").Milliseconds(200).Build()).Error(); err != nil { // its lease runs out
		t.Fatal(err)
	}
	dup, done, err := reserveSource(s, "acme", "e1")
	if dup || err != nil {
		t.Fatalf("after the dead owner's lease: dup=%v err=%v", dup, err)
	}
	if now, _ := inspect.Do(context.Background(), inspect.B().Get().Key(p+"acme:e1").Build()).ToString(); now == dead || now == "" {
		t.Fatalf("the key holds %q after the take-over, want the new owner's token", now)
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
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dup, done, err := s.Reserve(ctx, "acme", "e1", time.Now())
	if dup || done != nil || failure.KindOf(err) != failure.Unavailable {
		t.Fatalf("Reserve without redis: dup=%v done!=nil=%v err=%v; want an Unavailable failure", dup, done != nil, err)
	}
	if ctx.Err() != nil { // one retry on a new connection, not retries until the deadline
		t.Fatalf("Reserve without redis failed only at its deadline: %v", err)
	}
}

// TestRedisMarkSurvivesRestart kills Redis between the reservation and Kafka's ack: the mark
// is retried until Redis is back, and the id is then a duplicate on any replica.
func TestRedisMarkSurvivesRestart(t *testing.T) {
	srv := redisserver.Require(t)
	p := prefix(t)
	var logs testkit.LogBuffer
	s := redisStore(t, srv.Addr(), dedup.RedisOptions{KeyPrefix: p, Log: slog.New(slog.NewTextHandler(&logs, nil))})
	other := redisStore(t, srv.Addr(), dedup.RedisOptions{KeyPrefix: p}) // another replica
	_, done, err := s.Reserve(context.Background(), "acme", "e1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	done(true) // Kafka acknowledged while Redis was down
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, _, err := other.Reserve(ctx, "acme", "e2", time.Now()); failure.KindOf(err) != failure.Unavailable {
		t.Fatalf("Reserve while redis is down: err = %v, want Unavailable", err)
	}
	// The positive signal that the mark met the dead server, rather than ran before the kill.
	testkit.Eventually(t, 30*time.Second, "the mark retried while redis is down", func() bool {
		return strings.Contains(logs.String(), "seen in redis failed; retrying")
	}, logs.String)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	if dup, _, err := reserveSource(other, "acme", "e1"); !dup || err != nil {
		t.Fatalf("after redis came back: dup=%v err=%v; want the retried mark to make it a duplicate", dup, err)
	}
	// The mark was retried with a pause between attempts (250 ms), not in a loop.
	tries, down := strings.Count(logs.String(), "seen in redis failed; retrying"), time.Since(killed)
	if bound := 2 + int(down/(100*time.Millisecond)); tries > bound {
		t.Errorf("the mark was tried %d times in %v, more than %d: no pause between attempts", tries, down, bound)
	}
}

func reserveSource(s dedup.Reserver, source, id string) (bool, func(bool), error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return s.Reserve(ctx, source, id, time.Now())
}

// TestRedisLostWhileWaitingForAnotherReplica: a delivery waits for an id another replica
// holds, and Redis dies during the wait: the delivery fails as Unavailable (a 503), never as
// a reservation with nothing behind it.
func TestRedisLostWhileWaitingForAnotherReplica(t *testing.T) {
	srv := redisserver.Require(t)
	p := prefix(t)
	other := redisStore(t, srv.Addr(), dedup.RedisOptions{KeyPrefix: p})
	s := redisStore(t, srv.Addr(), dedup.RedisOptions{KeyPrefix: p})
	if _, _, err := other.Reserve(context.Background(), "acme", "e1", time.Now()); err != nil {
		t.Fatal(err)
	}
	c := inspector(t, srv.Addr())
	type answer struct {
		dup  bool
		done func(bool)
		err  error
	}
	got := make(chan answer, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	go func() {
		dup, done, err := s.Reserve(ctx, "acme", "e1", time.Now())
		got <- answer{dup, done, err}
	}()
	// Three SETs: the other replica's, this one's first, and a poll after it: the wait has begun.
	testkit.Eventually(t, 30*time.Second, "the second replica polls", func() bool { return setCalls(c) >= 3 })
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	a := <-got
	if a.dup || a.done != nil || failure.KindOf(a.err) != failure.Unavailable {
		t.Fatalf("Reserve when Redis died during its wait: dup=%v done!=nil=%v err=%v; want an Unavailable failure", a.dup, a.done != nil, a.err)
	}
}

// TestRedisConnectionBrokenAtTheReservation: the connection breaks as a reservation's SET is
// sent (a proxy closes it instead of forwarding the command): the SET is sent again on a new
// connection, and the delivery is reserved, not refused.
func TestRedisConnectionBrokenAtTheReservation(t *testing.T) {
	addr := testenv.Require(t, testenv.Redis)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	var broke atomic.Bool
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go forwardBreakingFirstSet(c, addr, &broke)
		}
	}()
	s := redisStore(t, l.Addr().String(), dedup.RedisOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dup, done, err := s.Reserve(ctx, "acme", "e1", time.Now())
	if err != nil || dup {
		t.Fatalf("Reserve = dup %v, err %v; want the id reserved on a new connection", dup, err)
	}
	if !broke.Load() {
		t.Fatal("the proxy broke no connection: the test tested nothing")
	}
	done(true)
	if dup, _, err := s.Reserve(ctx, "acme", "e1", time.Now()); err != nil || !dup {
		t.Fatalf("after the mark, Reserve = dup %v, err %v; want a duplicate", dup, err)
	}
}

// forwardBreakingFirstSet forwards c to the server at addr, and closes both instead of
// forwarding the first SET command of all connections (its RESP bulk string).
func forwardBreakingFirstSet(c net.Conn, addr string, broke *atomic.Bool) {
	defer c.Close()
	u, err := net.Dial("tcp", addr)
	if err != nil {
		return
	}
	defer u.Close()
	go func() { _, _ = io.Copy(c, u) }()
	buf := make([]byte, 64<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 && bytes.Contains(buf[:n], []byte("$3\r\nSET\r\n")) && broke.CompareAndSwap(false, true) {
			return
		}
		if n > 0 {
			if _, err := u.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// setCalls is how many SET commands the server at c has run (INFO commandstats), or -1.
func setCalls(c rueidis.Client) int {
	info, err := c.Do(context.Background(), c.B().Info().Section("commandstats").Build()).ToString()
	_, after, ok := strings.Cut(info, "cmdstat_set:calls=")
	calls, _, _ := strings.Cut(after, ",")
	n, convErr := strconv.Atoi(calls)
	if err != nil || !ok || convErr != nil {
		return -1
	}
	return n
}

// TestRedisRoundTrips: a reservation of an id seen costs one SET; a delivery waiting for an
// id another replica holds polls with a backoff (from 2 ms, doubling, to 200 ms), not in a
// loop: at most about log2(100) polls plus one per 100 ms waited.
func TestRedisRoundTrips(t *testing.T) {
	srv := redisserver.Require(t)
	c := inspector(t, srv.Addr())
	p := prefix(t)
	other := redisStore(t, srv.Addr(), dedup.RedisOptions{KeyPrefix: p})
	s := redisStore(t, srv.Addr(), dedup.RedisOptions{KeyPrefix: p})

	_, done, err := reserveSource(other, "acme", "seen")
	if err != nil {
		t.Fatal(err)
	}
	done(true)
	testkit.Eventually(t, 30*time.Second, "the id is marked seen", func() bool {
		dup, _, err := reserveSource(s, "acme", "seen")
		return err == nil && dup
	})
	before := setCalls(c)
	if dup, _, err := reserveSource(s, "acme", "seen"); !dup || err != nil {
		t.Fatalf("Reserve of a seen id: dup=%v err=%v", dup, err)
	}
	if n := setCalls(c) - before; n != 1 {
		t.Errorf("a reservation of a seen id took %d SETs, want 1", n)
	}

	_, release, err := reserveSource(other, "acme", "held")
	if err != nil {
		t.Fatal(err)
	}
	before = setCalls(c)
	begun := time.Now()
	got := make(chan error, 1)
	go func() {
		dup, done, err := reserveSource(s, "acme", "held")
		if err == nil && (dup || done == nil) {
			err = fmt.Errorf("dup=%v done=nil:%v, want the id reserved once released", dup, done == nil)
		}
		if done != nil {
			done(false)
		}
		got <- err
	}()
	testkit.Eventually(t, 30*time.Second, "the second replica polls", func() bool { return setCalls(c)-before >= 3 })
	release(false)
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	polls, waited := setCalls(c)-before, time.Since(begun)
	if bound := 8 + int(waited/(100*time.Millisecond)); polls > bound {
		t.Errorf("%d polls in %v of waiting for another replica's id, more than %d: no backoff", polls, waited, bound)
	}
}

// TestRedisCancelledDelivery: a delivery whose context has ended before Redis is asked is
// refused as Unavailable (a 503 the sender retries), like any other failure to ask.
func TestRedisCancelledDelivery(t *testing.T) {
	s := redisStore(t, testenv.Require(t, testenv.Redis), dedup.RedisOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dup, done, err := s.Reserve(ctx, "acme", "e1", time.Now())
	if dup || done != nil || failure.KindOf(err) != failure.Unavailable {
		t.Fatalf("Reserve with an ended context: dup=%v done!=nil=%v err=%v; want an Unavailable failure", dup, done != nil, err)
	}
}
