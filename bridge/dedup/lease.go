package dedup

import (
	"context"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// A reservation held by this process on a Redis store: renewed until done, then marked seen
// or released in the background.

// Compare-and-act on a key that must still hold the owner's token: a reservation that
// expired and was taken by another replica is theirs, not ours to renew or delete.
var (
	renewScript   = redis.NewScript(`if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0`)
	releaseScript = redis.NewScript(`if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`)
)

// settleTimeout bounds one attempt to mark or release; settleBackoff spaces the retries of a
// mark.
const (
	settleTimeout = 2 * time.Second
	settleBackoff = 250 * time.Millisecond
)

// ownership is one reservation owned by this process.
type ownership struct {
	r          *Redis
	key, token string
	window     time.Duration

	mu    sync.Mutex
	renew *time.Timer
	ended bool
}

func (r *Redis) own(key, token string, window time.Duration) func(bool) {
	o := &ownership{r: r, key: key, token: token, window: window}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.renew = time.AfterFunc(r.lease/3, o.keepAlive)
	return o.done
}

// keepAlive renews the lease and schedules the next renewal, until done or until the
// reservation is found to be no longer ours.
func (o *ownership) keepAlive() {
	ctx, cancel := context.WithTimeout(context.Background(), o.r.lease/3)
	defer cancel()
	ours, err := renewScript.Run(ctx, o.r.rdb, []string{o.key}, o.token, o.r.lease.Milliseconds()).Int()
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.ended {
		return
	}
	switch {
	case err != nil:
		o.r.log.Warn("dedup: renewing a reservation in redis failed; retrying", "err", err)
	case ours == 0:
		o.r.log.Warn("dedup: a reservation expired in redis before its record was settled; a redelivery may be produced twice")
		return
	}
	o.renew.Reset(o.r.lease / 3)
}

// done ends the reservation once; later calls are no-ops.
func (o *ownership) done(accepted bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.ended {
		return
	}
	o.ended = true
	o.renew.Stop()
	o.r.bg.Add(1)
	go o.r.settle(o.key, o.token, o.window, accepted)
}

// settle marks key seen for window, retrying until it succeeds or the store is closed, or
// releases it once: a failed release only leaves the id blocked until its lease expires.
func (r *Redis) settle(key, token string, window time.Duration, accepted bool) {
	defer r.bg.Done()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), settleTimeout)
		var err error
		if accepted {
			err = r.rdb.Set(ctx, key, seenValue, window).Err()
		} else {
			err = releaseScript.Run(ctx, r.rdb, []string{key}, token).Err()
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
