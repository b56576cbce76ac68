package dedup

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"

	"github.com/socialbridge/bridge/bridge/failure"
)

// Redis is a Reserver on a Redis (7 or later) or Valkey server, so that replicas behind a
// load balancer share one protocol: a redelivery that reaches another replica, or arrives
// while the first attempt is still in flight there, is answered as it would be by one
// process. Each (source, id) is one key, {prefix}{source}:{id}, holding either a
// reservation (a token unique to its owner, with a TTL of the lease) or "s" (seen, with the
// source's window as TTL):
//
//   - Reserve sets the token with SET NX GET PX lease: one round trip that either takes the id
//     or tells who holds it. "s" is a duplicate. Another token is a delivery in flight on some
//     replica: Reserve polls again with backoff (2 ms doubling up to 200 ms) until the key is
//     "s" (duplicate), gone (try to take it), or ctx ends.
//   - While it owns the id, the owner renews the lease every third of it (all its
//     reservations in one pipeline, on a connection of their own), so a record whose fate
//     Kafka has not settled keeps its reservation however long that takes.
//   - done(true) sets "s" with the window's TTL; done(false) deletes the key if it still holds
//     the owner's token. Both are queued and sent in the background, every settle waiting
//     then in one pipeline, so that neither the answer nor franz-go's promise waits on Redis;
//     a failed mark is retried until Close, while the reservation, still renewed, keeps
//     redeliveries waiting.
//
// Commands of concurrent deliveries share round trips: the client (rueidis) pipelines
// whatever is waiting on one connection while the previous write is on the wire, so a
// reservation costs Redis and the bridge a share of a write and a read, not a round trip
// of their own.
//
// Polling rather than keyspace notifications or pub/sub: waiting is rare (a redelivery of an
// id still in flight), notifications need server configuration that managed Redis often
// forbids, and a notification is fire and forget, so a waiter would poll anyway in case it
// missed one. If Redis cannot be asked, Reserve fails with a failure.Unavailable error and
// nothing is produced.
//
// What this cannot cover: a replica killed while it owns an id. Its reservation expires one
// lease later and the next delivery is produced again, a duplicate if the dead replica's
// record had reached Kafka. A Redis that loses its data (no persistence) forgets the window.
type Redis struct {
	rdb     rueidis.Client // the request path: reservations and marks, pipelined together
	upkeep  rueidis.Client // renewals, releases and questions, on a connection of their own
	prefix  string
	window  time.Duration
	windows map[string]time.Duration
	lease   time.Duration
	log     *slog.Logger

	owner string // this process's part of every token
	seq   atomic.Uint64

	mu      sync.Mutex
	held    map[string]holding // reservations to renew, by key
	settles []settle           // settles waiting to be sent, oldest first
	wake    chan struct{}      // a settle was queued

	bg      sync.WaitGroup // settles queued or in flight
	closed  chan struct{}
	stopped sync.WaitGroup // renewLoop and settleLoop
	once    sync.Once
}

// RedisOptions configure a Redis store. Addr, Window and Lease are required.
type RedisOptions struct {
	// Addr is the server's host:port; Username and Password authenticate (ACL, or the
	// password alone for requirepass); DB selects a database; TLS, when not nil, is used.
	Addr               string
	Username, Password string
	DB                 int
	TLS                *tls.Config
	// Timeout bounds dialing and how long the connection may go unanswered before it is
	// taken as broken (1 s when 0): a Redis that does not answer turns deliveries into 503s
	// well before kafka.produce_timeout.
	Timeout time.Duration
	// KeyPrefix starts every key, so that several bridges (or tests) can share a server.
	KeyPrefix string
	// Window is how long an accepted id is remembered; Windows overrides it per source.
	Window  time.Duration
	Windows map[string]time.Duration
	// Lease is the TTL of a reservation, renewed by its owner every third of it: how long an
	// id stays blocked after its owner died.
	Lease time.Duration
	// Log receives the failures of background marks; nil discards them.
	Log *slog.Logger
}

// Values of a key besides a reservation's token.
const seenValue = "s"

// flushDelay is how long the client's writer waits, after a write, for more commands of
// concurrent deliveries to join the next one (only while several wait): measured with
// BenchmarkRedisReserve at 32 and 256 deliveries at once, it takes the bridge's CPU per
// reservation from 9 to 5.5 µs and from 6.5 to 4 µs.
const flushDelay = 20 * time.Microsecond

// Poll backoff of a delivery waiting for an id in flight on another replica.
const (
	firstPoll = 2 * time.Millisecond
	maxPoll   = 200 * time.Millisecond
)

// NewRedis returns a Redis store on the server of o, with two clients: one for the request
// path, whose commands rueidis pipelines on one connection, and one for the upkeep of its
// reservations. A server that cannot be reached yet is no error: Reserve fails until it
// can. It panics without an address, a window or a lease. Close closes the clients.
func NewRedis(o RedisOptions) *Redis {
	if o.Addr == "" || o.Window <= 0 || o.Lease <= 0 {
		panic("dedup: NewRedis needs an address, a positive window and lease")
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	rdb, upkeep := redisClient(o), redisClient(o)
	var raw [8]byte
	_, _ = rand.Read(raw[:])
	r := &Redis{
		rdb: rdb, upkeep: upkeep,
		prefix: o.KeyPrefix, window: o.Window, windows: o.Windows, lease: o.Lease, log: o.Log,
		owner: "r:" + hex.EncodeToString(raw[:]) + ":", held: map[string]holding{},
		wake: make(chan struct{}, 1), closed: make(chan struct{}),
	}
	r.stopped.Add(2)
	go r.renewLoop()
	go r.settleLoop()
	return r
}

// redisClient connects to the server of o on one pipelined connection. Client-side caching
// is off: it needs CLIENT TRACKING, which managed servers may refuse, and no key is read
// twice.
func redisClient(o RedisOptions) rueidis.Client {
	timeout := cmp.Or(o.Timeout, time.Second)
	cl, err := rueidis.NewClient(rueidis.ClientOption{
		InitAddress: []string{o.Addr}, Username: o.Username, Password: o.Password, SelectDB: o.DB,
		TLSConfig: o.TLS, Dialer: net.Dialer{Timeout: timeout, KeepAlive: timeout},
		ConnWriteTimeout: timeout, ForceSingleClient: true, DisableCache: true,
		// One connection: the deeper each pipeline, the fewer reads and writes per command
		// on both sides.
		PipelineMultiplex: -1, MaxFlushDelay: flushDelay,
	})
	if cl == nil { // options it refuses, whatever the server
		panic(fmt.Sprintf("dedup: redis client: %v", err))
	}
	return cl // err, if any: the server cannot be reached yet, which Reserve reports
}

// Reserve implements Reserver.
func (r *Redis) Reserve(ctx context.Context, source, id string, now time.Time) (dup bool, done func(accepted bool), err error) {
	k := r.prefix + source + ":" + id
	token := r.owner + strconv.FormatUint(r.seq.Add(1), 36)
	poll := time.Duration(0)
	for {
		old, err := r.take(ctx, k, token)
		switch {
		case rueidis.IsRedisNil(err), err == nil && old == token: // the latter: a retried SET
			return false, r.own(k, token, r.windowOf(source)), nil
		case err != nil && poll > 0 && ctx.Err() != nil:
			return false, nil, ctx.Err() // the wait for another replica's attempt ran out
		case err != nil:
			return false, nil, failure.Wrap(failure.Unavailable, "the dedup store (redis) cannot be reached", err)
		case old == seenValue:
			return true, nil, nil
		}
		poll = min(max(2*poll, firstPoll), maxPoll)
		if err := sleep(ctx, poll); err != nil {
			return false, nil, err
		}
	}
}

// take sets key to token unless it exists (SET NX GET PX lease) and returns what it held
// (a rueidis nil error when nothing). A connection found broken is tried once more, on a
// new one: the SET may have been applied, which the caller tells by its own token.
func (r *Redis) take(ctx context.Context, key, token string) (string, error) {
	for try := 0; ; try++ {
		cmd := r.rdb.B().Set().Key(key).Value(token).Nx().Get().PxMilliseconds(r.lease.Milliseconds()).Build()
		old, err := r.rdb.Do(ctx, cmd).ToString()
		var redisErr *rueidis.RedisError
		if err == nil || try > 0 || ctx.Err() != nil || errors.As(err, &redisErr) {
			return old, err
		}
	}
}

func (r *Redis) windowOf(source string) time.Duration {
	if w, ok := r.windows[source]; ok {
		return w
	}
	return r.window
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// CheckEviction asks the server for its maxmemory-policy and returns it, warning through the
// store's log when it is not noeviction: every dedup key has a TTL, so allkeys-* and
// volatile-* may both evict a seen id (its redelivery is then produced twice) or a
// reservation in flight. A server that does not answer CONFIG GET (managed services often
// rename or forbid it) is warned about as not checked, and "" returned.
func (r *Redis) CheckEviction(ctx context.Context) string {
	got, err := r.upkeep.Do(ctx, r.upkeep.B().ConfigGet().Parameter("maxmemory-policy").Build()).AsStrMap()
	policy := got["maxmemory-policy"]
	switch {
	case err != nil || policy == "":
		r.log.Warn("dedup: the redis maxmemory-policy could not be checked; unless it is noeviction, the server may evict dedup keys and a redelivery be produced twice",
			"err", cmp.Or(err, errors.New("CONFIG GET answered no policy")))
	case policy != "noeviction":
		r.log.Warn("dedup: the redis maxmemory-policy may evict dedup keys (set it to noeviction): a forgotten id's redelivery is produced twice",
			"maxmemory-policy", policy)
	}
	return policy
}

// Ping tells whether the server answers, for readiness.
func (r *Redis) Ping(ctx context.Context) error {
	return r.rdb.Do(ctx, r.rdb.B().Ping().Build()).Error()
}

// Close waits for the settles queued and in flight, at most until ctx ends, stops renewing,
// and closes the clients.
func (r *Redis) Close(ctx context.Context) error {
	waited := make(chan struct{})
	go func() { r.bg.Wait(); close(waited) }()
	var err error
	select {
	case <-waited:
	case <-ctx.Done():
		err = errors.New("dedup: redis marks still in flight at close")
	}
	r.once.Do(func() { close(r.closed) })
	r.stopped.Wait()
	r.rdb.Close()
	r.upkeep.Close()
	return err
}
