package dedup

import (
	"cmp"
	"context"
	"strconv"
	"time"

	"github.com/redis/rueidis"
)

// The reservations this process owns on a Redis store: renewed together, on a client of their
// own, until each is settled (marked seen, or released). Renewals never wait behind the
// request path's commands: during a Kafka outage every provider retry asks Redis, and a
// renewal starved past the lease would let another replica produce the record again.
//
// Settles are queued by done and sent by one goroutine, each time all that wait, in one
// pipeline: marks on the request path's connection, where they share writes with the
// reservations, releases on the upkeep's. While a pipeline is on the wire the next settles
// gather behind it, so the more deliveries there are, the fewer writes each costs.
//
// Why a settle may trail the answer: what keeps another replica from producing an id again
// while its record is in flight is the reservation, written (SET NX) before the record is
// produced, not the mark. A crash after the answer and before the mark reaches Redis leaves
// the reservation as it was: redeliveries keep waiting on it, renewals stop with the process,
// and one lease later the id is free again. That is the outcome of a crash while the record
// is still in flight, the documented limit (docs/dedup.md, bench/FAULTS.md), reached by no new
// path; marking before answering would narrow that window by one round trip and cost one per
// delivery. A failed record's release is no promise at all: until it lands the id stays
// blocked, and at worst expires with its lease.

// Compare-and-act on a key that must still hold the owner's token: a reservation that
// expired and was taken by another replica is theirs, not ours to renew or delete. A renewal
// answers 1, or what the key holds instead (0 when it is gone), so that the renewer can tell
// its own settle from a lost reservation.
//
// NoSha: each is sent as EVAL, one round trip. rueidis's ExecMulti of a SHA script first
// sends SCRIPT LOAD and waits for it, every call: a second round trip in each renewal, whose
// time counts against the third of the lease it has (TestRedisLeaseRenewed lost leases of
// 300 ms that way on a loaded machine). The scripts are short; Redis caches them by digest.
var (
	renewScript = rueidis.NewLuaScriptNoSha(`local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
if v then return v end
return 0`)
	releaseScript = rueidis.NewLuaScriptNoSha(`if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`)
)

// settleTimeout bounds one attempt to mark or release; settleBackoff spaces the retries of
// marks; renewBatch and settleBatch are how many renewals or settles go in one pipeline.
const (
	settleTimeout = 2 * time.Second
	settleBackoff = 250 * time.Millisecond
	renewBatch    = 512
	settleBatch   = 1000
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

// settle is a reservation's outcome on its way to Redis.
type settle struct {
	key, token string
	window     time.Duration
	accepted   bool
}

// own records key as held by this process under token, and returns its done.
func (r *Redis) own(key, token string, window time.Duration) func(bool) {
	r.mu.Lock()
	r.held[key] = holding{token: token}
	r.mu.Unlock()
	ended := false
	return func(accepted bool) {
		r.mu.Lock()
		if ended {
			r.mu.Unlock()
			return
		}
		ended = true
		r.queue(settle{key: key, token: token, window: window, accepted: accepted})
		r.mu.Unlock()
	}
}

// queue hands s to settleLoop. r.mu is held.
func (r *Redis) queue(s settle) {
	r.settling(s)
	r.bg.Add(1)
	r.settles = append(r.settles, s)
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// settling records, before its command is sent, that the settle s has begun: from then on
// a renewal may find the key changed by the settle itself. r.mu is held.
func (r *Redis) settling(s settle) {
	if h := r.held[s.key]; h.token == s.token {
		h.settling = releasing
		if s.accepted {
			h.settling = marking
		}
		r.held[s.key] = h
	}
}

// unhold stops renewing the keys of ss that still stand for their token.
func (r *Redis) unhold(ss []settle) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range ss {
		if r.held[s.key].token == s.token {
			delete(r.held, s.key)
		}
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

// settleLoop sends the queued settles until Close, all that wait each time: marks are
// retried every settleBackoff until they succeed (the reservation is renewed meanwhile, so
// redeliveries keep waiting); a release is tried once, as a failed one only leaves the id
// blocked until its lease expires.
func (r *Redis) settleLoop() {
	defer r.stopped.Done()
	var retry []settle
	var again <-chan time.Time
	for {
		var batch []settle
		select {
		case <-r.wake:
		case <-again:
			batch, retry, again = retry, nil, nil
		case <-r.closed:
			r.abandon(append(retry, r.dequeue()...))
			return
		}
		failed := r.send(append(batch, r.dequeue()...))
		if retry = append(retry, failed...); len(retry) > 0 && again == nil {
			again = time.After(settleBackoff)
		}
	}
}

// dequeue takes the settles queued so far.
func (r *Redis) dequeue() []settle {
	r.mu.Lock()
	defer r.mu.Unlock()
	ss := r.settles
	r.settles = nil
	return ss
}

// send settles ss, settleBatch at a time, and returns the marks that failed.
func (r *Redis) send(ss []settle) (failed []settle) {
	for len(ss) > 0 {
		n := min(len(ss), settleBatch)
		failed = append(failed, r.sendBatch(ss[:n])...)
		ss = ss[n:]
	}
	return failed
}

// sendBatch sends the marks of ss in one pipeline and its releases in another, and returns
// the marks that failed; the rest are settled.
func (r *Redis) sendBatch(ss []settle) (failed []settle) {
	ctx, cancel := context.WithTimeout(context.Background(), settleTimeout)
	defer cancel()
	var marks, releases []settle
	var cmds rueidis.Commands
	var execs []rueidis.LuaExec
	for _, s := range ss {
		if s.accepted {
			marks = append(marks, s)
			cmds = append(cmds, r.rdb.B().Set().Key(s.key).Value(seenValue).PxMilliseconds(s.window.Milliseconds()).Build())
		} else {
			releases = append(releases, s)
			execs = append(execs, rueidis.LuaExec{Keys: []string{s.key}, Args: []string{s.token}})
		}
	}
	var settled []settle
	var markErr, releaseErr error
	for i, res := range r.rdb.DoMulti(ctx, cmds...) {
		if err := res.Error(); err != nil {
			failed, markErr = append(failed, marks[i]), err
		} else {
			settled = append(settled, marks[i])
		}
	}
	if len(execs) > 0 {
		for _, res := range releaseScript.ExecMulti(ctx, r.upkeep, execs...) {
			releaseErr = cmp.Or(releaseErr, res.Error())
		}
		settled = append(settled, releases...)
	}
	if markErr != nil {
		r.log.Warn("dedup: marking accepted ids seen in redis failed; retrying", "ids", len(failed), "err", markErr)
	}
	if releaseErr != nil {
		r.log.Warn("dedup: releasing reservations in redis failed; they expire with their lease", "err", releaseErr)
	}
	r.finish(settled)
	return failed
}

// finish stops renewing the reservations of ss, whose settles are over.
func (r *Redis) finish(ss []settle) {
	r.unhold(ss)
	for range ss {
		r.bg.Done()
	}
}

// abandon gives up the settles of ss at Close.
func (r *Redis) abandon(ss []settle) {
	for _, s := range ss {
		if s.accepted {
			r.log.Error("dedup: an accepted id could not be marked seen in redis before close")
		}
	}
	r.finish(ss)
}

// renewLoop renews every held reservation each third of the lease, until Close.
func (r *Redis) renewLoop() {
	defer r.stopped.Done()
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
	ms := strconv.FormatInt(r.lease.Milliseconds(), 10)
	execs := make([]rueidis.LuaExec, len(keys))
	for i, k := range keys {
		execs[i] = rueidis.LuaExec{Keys: []string{k}, Args: []string{tokens[i], ms}}
	}
	results := renewScript.ExecMulti(ctx, r.upkeep, execs...)
	for _, res := range results {
		if err := res.NonRedisError(); err != nil {
			r.log.Warn("dedup: renewing reservations in redis failed; retrying", "reservations", len(keys), "err", err)
			return
		}
	}
	for i, res := range results {
		if now, ok := renewed(res); !ok && r.lost(keys[i], tokens[i], now) {
			r.log.Warn("dedup: a reservation expired in redis before its record was settled; a redelivery may be produced twice")
		}
	}
}

// renewed reads a renewal's answer: ok when the lease was extended, else what the key held
// instead (a string, or 0 when it was gone). An answer that is an error tells nothing, and
// counts as renewed: the next renewal asks again.
func renewed(res rueidis.RedisResult) (now any, ok bool) {
	msg, err := res.ToMessage()
	if err != nil {
		return nil, true
	}
	if n, err := msg.AsInt64(); err == nil {
		return n, n == 1
	}
	if s, err := msg.ToString(); err == nil {
		return s, false
	}
	return nil, true
}
