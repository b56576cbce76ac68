package dedup

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// The reservations this process owns on a Redis store: renewed together, on a client of their
// own, until each is settled (marked seen, or released). Renewals never wait behind the
// request path's commands: during a Kafka outage every provider retry asks Redis, and a
// renewal starved past the lease would let another replica produce the record again. Marks
// go through the request path's autopipeline, where they batch with the reservations.

// Compare-and-act on a key that must still hold the owner's token: a reservation that
// expired and was taken by another replica is theirs, not ours to renew or delete. A renewal
// answers 1, or what the key holds instead (0 when it is gone), so that the renewer can tell
// its own settle from a lost reservation.
var (
	renewScript = redis.NewScript(`local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
if v then return v end
return 0`)
	releaseScript = redis.NewScript(`if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`)
)

// settleTimeout bounds one attempt to mark or release; settleBackoff spaces the retries of a
// mark; renewBatch is how many renewals go in one pipeline.
const (
	settleTimeout = 2 * time.Second
	settleBackoff = 250 * time.Millisecond
	renewBatch    = 512
)

// holding is a reservation this process renews, and what its settle is doing.
type holding struct {
	token    string
	settling settleKind
}

type settleKind uint8

const (
	unsettled settleKind = iota
	marking              // done(true) is setting "s"
	releasing            // done(false) is deleting the key
)

// own records key as held by this process under token, and returns its done.
func (r *Redis) own(key, token string, window time.Duration) func(bool) {
	r.mu.Lock()
	r.held[key] = holding{token: token}
	r.mu.Unlock()
	var ended atomic.Bool
	return func(accepted bool) {
		if !ended.CompareAndSwap(false, true) {
			return
		}
		r.bg.Add(1)
		go r.settle(key, token, window, accepted)
	}
}

// unhold stops renewing key if it still stands for token.
func (r *Redis) unhold(key, token string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.held[key].token == token {
		delete(r.held, key)
	}
}

// settling records, before its command is sent, that key's settle has begun: from then on
// a renewal may find the key changed by the settle itself.
func (r *Redis) settling(key, token string, accepted bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if h := r.held[key]; h.token == token {
		h.settling = releasing
		if accepted {
			h.settling = marking
		}
		r.held[key] = h
	}
}

// lost stops renewing key, which a renewal found not holding token (it held now instead:
// another value, or 0 when gone), and reports whether the reservation was lost while its
// record was unsettled: the key changed before this process's own settle began, or it was
// taken by another replica's token before a mark. A key its own settle marked or deleted is
// no loss.
func (r *Redis) lost(key, token string, now any) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	h, ok := r.held[key]
	if !ok || h.token != token {
		return false // settled: the key's change was the settle's
	}
	delete(r.held, key)
	other, _ := now.(string)
	switch h.settling {
	case unsettled:
		return true
	case marking:
		return other != "" && other != seenValue
	default:
		return false // a failed record is not produced twice by its release
	}
}

// settle marks key seen for window, retrying until it succeeds or the store is closed; the
// reservation is renewed meanwhile, so redeliveries keep waiting. Or it releases key once: a
// failed release only leaves the id blocked until its lease expires.
func (r *Redis) settle(key, token string, window time.Duration, accepted bool) {
	defer r.bg.Done()
	defer r.unhold(key, token)
	r.settling(key, token, accepted)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), settleTimeout)
		var err error
		if accepted {
			err = r.cmd.Set(ctx, key, seenValue, window).Err()
		} else {
			err = releaseScript.Run(ctx, r.upkeep, []string{key}, token).Err()
		}
		cancel()
		switch {
		case err == nil:
			return
		case !accepted:
			r.log.Warn("dedup: releasing a reservation in redis failed; it expires with its lease", "err", err)
			return
		}
		select {
		case <-r.closed:
			r.log.Error("dedup: an accepted id could not be marked seen in redis before close", "err", err)
			return
		default:
			r.log.Warn("dedup: marking an accepted id seen in redis failed; retrying", "err", err)
		}
		select {
		case <-time.After(settleBackoff):
		case <-r.closed:
		}
	}
}

// renewLoop renews every held reservation each third of the lease, until Close.
func (r *Redis) renewLoop() {
	defer close(r.renewed)
	t := time.NewTicker(r.lease / 3)
	defer t.Stop()
	for {
		select {
		case <-r.closed:
			return
		case <-t.C:
			r.renewAll()
		}
	}
}

func (r *Redis) renewAll() {
	r.mu.Lock()
	keys := make([]string, 0, len(r.held))
	tokens := make([]string, 0, len(r.held))
	for k, h := range r.held {
		keys, tokens = append(keys, k), append(tokens, h.token)
	}
	r.mu.Unlock()
	for i := 0; i < len(keys); i += renewBatch {
		j := min(i+renewBatch, len(keys))
		r.renew(keys[i:j], tokens[i:j])
	}
}

// renew renews keys in one pipeline; a key found no longer ours is dropped, and reported
// when it was lost rather than settled.
func (r *Redis) renew(keys, tokens []string) {
	ctx, cancel := context.WithTimeout(context.Background(), r.lease/3)
	defer cancel()
	pipe := r.upkeep.Pipeline()
	cmds := make([]*redis.Cmd, len(keys))
	for i, k := range keys {
		cmds[i] = renewScript.Eval(ctx, pipe, []string{k}, tokens[i], r.lease.Milliseconds())
	}
	if _, err := pipe.Exec(ctx); err != nil && !isScriptResult(cmds) {
		r.log.Warn("dedup: renewing reservations in redis failed; retrying", "reservations", len(keys), "err", err)
		return
	}
	for i, c := range cmds {
		if now, err := c.Result(); err == nil && now != int64(1) && r.lost(keys[i], tokens[i], now) {
			r.log.Warn("dedup: a reservation expired in redis before its record was settled; a redelivery may be produced twice")
		}
	}
}

// isScriptResult reports whether every command of a pipeline got an answer: Exec returns the
// first command error, and a renewal's 0 is not one.
func isScriptResult(cmds []*redis.Cmd) bool {
	for _, c := range cmds {
		if c.Err() != nil {
			return false
		}
	}
	return true
}
