package redrive

import (
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
// window, as the ingress asks for a delivery.
//
// With dedup.store: redis it asks the bridge's own Redis, and reserves the id there as the
// ingress does: a bridge receiving the same id meanwhile waits for the replay's outcome,
// and is answered "duplicate" once the replay committed it.
//
// With the memory store there is no store to share: the window lives in each bridge's
// memory. The replay then reads what the event topics hold, committed, within the window
// (as a bridge's rebuild does at start) into a store of its own. What that cannot see: a
// delivery of the same id that a live bridge accepts while the replay runs, or after it
// (that bridge's memory does not learn of the replayed event until it restarts). Both are
// produced: one duplicate, for a provider that sends again an event whose delivery was
// quarantined and answered 202.
type deduper struct {
	mem   *dedup.Store
	redis *dedup.Redis
}

// newDeduper returns the check for cfg's store; for the memory store it first reads the
// records of the event topics of types within the window before now.
func newDeduper(ctx context.Context, cfg config.Config, c *cluster, types []string, now time.Time) (*deduper, error) {
	windows := map[string]time.Duration{}
	longest := cfg.Dedup.Window.D()
	for _, s := range cfg.Sources {
		if w := cfg.SourceWindow(s); w != cfg.Dedup.Window.D() {
			windows[s.Name] = w
			longest = max(longest, w)
		}
	}
	if cfg.Dedup.Store == config.StoreRedis {
		r := cfg.Dedup.Redis
		o := dedup.RedisOptions{Addr: r.Addr, Username: r.Username, Password: r.Password, DB: r.DB, Timeout: 5 * time.Second,
			KeyPrefix: r.KeyPrefix, Window: cfg.Dedup.Window.D(), Windows: windows, Lease: r.Lease.D()}
		if r.TLS {
			o.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		return &deduper{redis: dedup.NewRedis(o)}, nil
	}
	d := &deduper{mem: dedup.New(cfg.Dedup.Window.D(), cfg.Dedup.MaxIDs, dedup.Options{Windows: windows})}
	return d, d.fill(ctx, c, cfg.Kafka.TopicPrefix, types, now.Add(-longest))
}

// fill marks seen each committed record of the event topics of types since since, by its
// source header and key, at its timestamp: the store then ages each by its source's window.
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
		if src, ok := consumers.Header(r, "source"); ok && len(r.Key) > 0 && !r.Timestamp.Before(since) {
			d.mem.MarkSeen(src, string(r.Key), r.Timestamp)
		}
	}, nil)
	if err != nil {
		return fmt.Errorf("reading the event topics for dedup: %w", err)
	}
	return nil
}

// reserve is the ingress's Reserve: dup, or the id is this run's until done.
func (d *deduper) reserve(ctx context.Context, source, id string, now time.Time) (bool, func(bool), error) {
	ctx, cancel := context.WithTimeout(ctx, reserveTimeout)
	defer cancel()
	if d.redis != nil {
		return d.redis.Reserve(ctx, source, id, now)
	}
	return d.mem.Reserve(ctx, source, id, now)
}

// seen only looks: for a dry run, which must leave the bridge's store as it is.
func (d *deduper) seen(ctx context.Context, source, id string, now time.Time) (bool, error) {
	if d.redis != nil {
		return d.redis.Seen(ctx, source, id)
	}
	dup, done, err := d.mem.Reserve(ctx, source, id, now) // a store of this run's own
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
