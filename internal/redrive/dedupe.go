package redrive

import (
	"cmp"
	"context"
	"crypto/tls"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/bridge/dedup"
	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/consumers"
	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/internal/committed"
)

// reserveTimeout bounds the wait for an id that a live bridge has in flight.
const reserveTimeout = 30 * time.Second

// deduper answers, for a replay, whether an event was accepted within its source's dedup
// window, as the ingress asks for a delivery: by (source, key), the key being the event's
// dedup.EventKey (its id, or a content-keyed delivery's digest of what is signed).
//
// With dedup.store: redis it asks the bridge's own Redis, and reserves the key there as the
// ingress does: a bridge receiving the same key meanwhile waits for the replay's outcome,
// and is answered "duplicate" once the replay committed it. But for a delivery's own key
// (see ownKey): the ingress claimed it there when it quarantined the delivery, so Redis
// has it seen whether or not an event was accepted under it. While it does, no bridge can
// accept the key, so only an earlier replay can have produced it: for these keys the replay
// reads the event topics, as with the memory store, and reserves the key in Redis only if
// the quarantine's claim has ended (the window passed). Where it has not, the claim keeps
// its time: the window of a replayed event's key runs from the quarantine, not the replay.
//
// With the memory store there is no store to share: the window lives in each bridge's
// memory. The replay then reads what the event topics hold, committed, within the window
// (as a bridge's rebuild does at start) into a store of its own. What that cannot see: a
// delivery of the same id that a live bridge accepts while the replay runs, or after it
// (that bridge's memory does not learn of the replayed event until it restarts). Both are
// produced: one duplicate, for a provider that sends again an event whose delivery was
// quarantined and answered 202.
type deduper struct {
	mem   *dedup.Store // every key with the memory store; with Redis, the own keys
	redis *dedup.Redis
}

// newDeduper returns the check for cfg's store. It first reads into a store of its own the
// records of the event topics within the window before now: of types for the memory store,
// of ownTypes (those of the events deduplicated on their delivery's own key) with Redis.
func newDeduper(ctx context.Context, cfg config.Config, c *cluster, types, ownTypes []string, now time.Time) (*deduper, error) {
	windows := map[string]time.Duration{}
	longest := cfg.Dedup.Window.D()
	for _, s := range cfg.Sources {
		if w := cfg.SourceWindow(s); w != cfg.Dedup.Window.D() {
			windows[s.Name] = w
			longest = max(longest, w)
		}
	}
	d := &deduper{mem: dedup.New(cfg.Dedup.Window.D(), cfg.Dedup.MaxIDs, dedup.Options{Windows: windows})}
	redis := cfg.Dedup.Store == config.StoreRedis
	if redis {
		types = ownTypes
	}
	if err := d.fill(ctx, c, cfg.Kafka.TopicPrefix, types, now.Add(-longest)); err != nil || !redis {
		return d, err
	}
	r := cfg.Dedup.Redis
	o := dedup.RedisOptions{Addr: r.Addr, Username: r.Username, Password: r.Password, DB: r.DB, Timeout: 5 * time.Second,
		KeyPrefix: r.KeyPrefix, Window: cfg.Dedup.Window.D(), Windows: windows, Lease: r.Lease.D()}
	if r.TLS {
		o.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	d.redis = dedup.NewRedis(o)
	return d, nil
}

// fill marks seen each committed record of the event topics of types since since, by its
// source header and the key its event was deduplicated on (its dedup.KeyHeader, else its
// key), at its timestamp: the store then ages each by its source's window.
func (d *deduper) fill(ctx context.Context, c *cluster, prefix string, types []string, since time.Time) error {
	if len(types) == 0 {
		return nil
	}
	topics := make([]string, len(types))
	for i, t := range types {
		topics[i] = event.Topic(prefix, t)
	}
	ss, err := committed.Ranges(ctx, c.adm, since, topics...)
	if err != nil {
		return err
	}
	_, err = committed.Read(ctx, c.opts, ss, func(r *kgo.Record) {
		src, _ := consumers.Header(r, "source")
		key, _ := consumers.Header(r, dedup.KeyHeader)
		if key = cmp.Or(key, string(r.Key)); src != "" && key != "" && !r.Timestamp.Before(since) {
			d.mem.MarkSeen(src, key, r.Timestamp)
		}
	}, nil)
	if err != nil {
		return fmt.Errorf("reading the event topics for dedup: %w", err)
	}
	return nil
}

// reserve is the ingress's Reserve: dup, or the key is this run's until done. own says key
// is its delivery's own (see ownKey).
func (d *deduper) reserve(ctx context.Context, source, key string, own bool, now time.Time) (bool, func(bool), error) {
	ctx, cancel := context.WithTimeout(ctx, reserveTimeout)
	defer cancel()
	switch {
	case d.redis == nil:
		return d.mem.Reserve(ctx, source, key, now)
	case !own:
		return d.redis.Reserve(ctx, source, key, now)
	}
	dup, done, err := d.mem.Reserve(ctx, source, key, now)
	if err != nil || dup {
		return dup, done, err
	}
	claimed, rdone, err := d.redis.Reserve(ctx, source, key, now)
	switch {
	case err != nil:
		done(false)
		return false, nil, err
	case claimed: // by the delivery's quarantine (see deduper)
		return false, done, nil
	}
	return false, func(ok bool) { done(ok); rdone(ok) }, nil
}

// seen only looks: for a dry run, which must leave the bridge's store as it is.
func (d *deduper) seen(ctx context.Context, source, key string, own bool, now time.Time) (bool, error) {
	if d.redis != nil && !own {
		return d.redis.Seen(ctx, source, key)
	}
	dup, done, err := d.mem.Reserve(ctx, source, key, now) // a store of this run's own
	if done != nil {
		done(false)
	}
	return dup, err
}

// close waits for the marks of Redis reservations in flight.
func (d *deduper) close(ctx context.Context) error {
	if d.redis == nil {
		return nil
	}
	return d.redis.Close(ctx)
}
