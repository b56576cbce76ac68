package service

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/bridge/dedup"
	"github.com/socialbridge/bridge/bridge/providers"
	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/internal/kafkaconn"
)

// dedupState is the bridge's dedup store and the readiness condition named "dedup" (check):
// with the memory store, that the window's ids have been rebuilt from Kafka; with Redis,
// that the server answers. The rebuild runs in the background, retried until it succeeds, so that
// /healthz answers at once and a large window never meets a start timeout. Until it is done
// the store holds deliveries back (each waits at most kafka.produce_timeout, then is answered
// 503), since accepting one before the window is known could produce it twice.
type dedupState struct {
	store dedup.Reserver
	mem   *dedup.Store // nil with Redis
	redis *dedup.Redis // nil in memory
	log   *slog.Logger

	snapshot      string // the memory store's snapshot file, if any
	snapshotEvery time.Duration
	clientOpts    []kgo.Opt // of the rebuild's reading client

	rebuilding  atomic.Bool
	read, total atomic.Int64
	// beforeOpen, if set, runs once the rebuild is done, before the memory store opens.
	beforeOpen func()

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Intervals of the background work.
const (
	rebuildLogEvery = 5 * time.Second
	// evictionCheckTimeout bounds the start's question about Redis's eviction policy; a
	// server that does not answer in time is warned about as not checked.
	evictionCheckTimeout = 5 * time.Second
)

// newDedup builds the configured store; with rebuild, a memory store waits for rebuild to
// fill it (see start).
func newDedup(cfg config.Config, log *slog.Logger, rebuild bool) *dedupState {
	d := &dedupState{log: log}
	windows := sourceWindows(cfg, log)
	if cfg.Dedup.Store == config.StoreRedis {
		o := redisOptions(cfg.Dedup.Redis)
		o.Window, o.Windows, o.Log = cfg.Dedup.Window.D(), windows, log
		d.redis = dedup.NewRedis(o)
		d.store = d.redis
		return d
	}
	if rebuild {
		d.rebuilding.Store(true)
		d.snapshot, d.snapshotEvery = cfg.Dedup.Snapshot, cfg.Dedup.SnapshotEvery.D()
		d.clientOpts = kafkaconn.Options(cfg.Kafka)
	}
	d.mem = dedup.New(cfg.Dedup.Window.D(), cfg.Dedup.MaxIDs, dedup.Options{Windows: windows, Rebuilding: rebuild})
	d.store = d.mem
	log.Info("dedup in memory", "max_ids", cfg.Dedup.MaxIDs,
		"memory_bound_mib", cfg.Dedup.MaxIDs*dedup.BytesPerID>>20)
	return d
}

// sourceWindows returns the windows of the sources whose window is not dedup.window, and
// warns about a window shorter than the source's sender's retry horizon.
func sourceWindows(cfg config.Config, log *slog.Logger) map[string]time.Duration {
	windows := map[string]time.Duration{}
	for _, src := range cfg.Sources {
		w := cfg.SourceWindow(src)
		if w != cfg.Dedup.Window.D() {
			windows[src.Name] = w
		}
		p, _ := providers.Lookup(src.Provider)
		h, ok := providers.Horizon(p)
		switch {
		case ok && w < h:
			log.Warn("the dedup window of a source is shorter than its sender's retry horizon: a retry after the window is produced twice",
				"source", src.Name, "window", w, "horizon", h)
		case ok && src.Dedup.Window == 0 && h > cfg.Dedup.Window.D():
			log.Info("the dedup window of a source is its sender's retry horizon, longer than dedup.window",
				"source", src.Name, "window", w)
		}
		if a := cfg.MaxAgeOf(src); a > w-providers.ClockSkew {
			log.Warn("the max_age of a source leaves less than the clock skew allowed before its dedup window ends: a delivery replayed just after the window may be produced again",
				"source", src.Name, "max_age", a, "window", w, "skew", providers.ClockSkew)
		}
	}
	return windows
}

// redisOptions connects to the configured server. A delivery waits at most
// kafka.produce_timeout (its context); a Redis that does not answer must turn into a 503
// well before, so the connection is taken as broken after a second without an answer.
func redisOptions(c config.DedupRedis) dedup.RedisOptions {
	o := dedup.RedisOptions{
		Addr: c.Addr, Username: c.Username, Password: c.Password, DB: c.DB, Timeout: time.Second,
		KeyPrefix: c.KeyPrefix, Lease: c.Lease.D(),
	}
	if c.TLS {
		o.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return o
}

// start begins the background work: the rebuild of a memory store from the records of cl's
// topics under prefix. cl is nil when there is no Kafka.
func (d *dedupState) start(cl *kgo.Client, prefix string) {
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	switch {
	case d.rebuilding.Load() && cl != nil:
		// The quarantine too: its records have no key, but those of content-keyed sources
		// carry the key their delivery was deduplicated on (dedup.KeyHeader).
		topics := event.Topics(prefix)
		d.wg.Go(func() { d.rebuild(ctx, cl, topics) })
	case d.redis != nil:
		d.wg.Go(func() {
			ctx, cancel := context.WithTimeout(ctx, evictionCheckTimeout)
			defer cancel()
			d.redis.CheckEviction(ctx)
		})
	}
}

// rebuild fills the memory store from Kafka, retrying with backoff until it succeeds or ctx
// ends, then opens it.
func (d *dedupState) rebuild(ctx context.Context, cl *kgo.Client, topics []string) {
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		return struct{}{}, d.rebuildOnce(ctx, cl, topics)
	}, backoff.WithBackOff(rebuildBackoff()), backoff.WithMaxElapsedTime(0),
		backoff.WithNotify(func(err error, wait time.Duration) {
			d.log.Warn("dedup rebuild from kafka failed; retrying", "err", err, "in", wait)
		}))
	if err != nil { // ctx ended
		return
	}
	if d.beforeOpen != nil {
		d.beforeOpen()
	}
	d.mem.Open()
	d.rebuilding.Store(false)
	d.snapshots(ctx)
}

// rebuildBackoff is the wait between attempts at the rebuild: from 1 s, doubling, up to 30 s,
// with no end.
func rebuildBackoff() backoff.BackOff {
	return &backoff.ExponentialBackOff{InitialInterval: time.Second, Multiplier: 2, MaxInterval: 30 * time.Second}
}

func (d *dedupState) rebuildOnce(ctx context.Context, cl *kgo.Client, topics []string) error {
	start := time.Now()
	last := start
	progress := func(read, total int64) {
		d.read.Store(read)
		d.total.Store(total)
		if time.Since(last) >= rebuildLogEvery {
			last = time.Now()
			d.log.Info("dedup rebuild from kafka in progress", "read", read, "of", total,
				"records_per_second", int(float64(read)/time.Since(start).Seconds()))
		}
	}
	st, err := dedup.Rebuild(ctx, cl, topics, time.Now(), d.mem, dedup.RebuildOptions{
		Snapshot: d.snapshot, Progress: progress, ClientOpts: d.clientOpts,
	})
	if st.SnapshotErr != nil && !errors.Is(st.SnapshotErr, fs.ErrNotExist) {
		d.log.Warn("dedup snapshot not used; reading the whole window from kafka", "path", d.snapshot, "err", st.SnapshotErr)
	}
	if len(st.Reread) > 0 {
		d.log.Warn("dedup snapshot written under other windows: reading these sources' whole window from kafka",
			"path", d.snapshot, "sources", st.Reread)
	}
	if err != nil {
		return err
	}
	took := time.Since(start)
	d.log.Info("dedup rebuilt", "ids", st.IDs, "from_snapshot", st.FromSnapshot, "records_from_kafka", st.Records,
		"since", st.Since.Format(time.RFC3339), "took", took.Round(time.Millisecond))
	return nil
}

// snapshots saves the memory store to its snapshot file every snapshotEvery until ctx ends,
// when one is configured.
func (d *dedupState) snapshots(ctx context.Context) {
	if d.snapshot == "" {
		return
	}
	t := time.NewTicker(d.snapshotEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			d.writeSnapshot()
		}
	}
}

// writeSnapshot saves a rebuilt memory store; a store still rebuilding holds only part of
// the window and is never saved.
func (d *dedupState) writeSnapshot() {
	if d.snapshot == "" || d.rebuilding.Load() {
		return
	}
	start := time.Now()
	n, err := d.mem.WriteSnapshot(d.snapshot, start)
	if err != nil {
		d.log.Warn("dedup snapshot failed", "path", d.snapshot, "err", err)
		return
	}
	d.log.Debug("dedup snapshot written", "path", d.snapshot, "entries", n, "took", time.Since(start).Round(time.Millisecond))
}

// check is the readiness condition "dedup": the memory store's window rebuilt, or Redis
// answering a ping.
func (d *dedupState) check(ctx context.Context) error {
	if d.rebuilding.Load() {
		return &unready{reason: "dedup: rebuilding from kafka", err: fmt.Errorf("%d of %d records read", d.read.Load(), d.total.Load())}
	}
	if d.redis != nil {
		if err := d.redis.Ping(ctx); err != nil {
			return &unready{reason: "dedup: redis unreachable", err: err}
		}
	}
	return nil
}

// register adds the rebuild's progress to the metrics.
func (d *dedupState) register(reg prometheus.Registerer) {
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	reg.MustRegister(
		gauge("bridge_dedup_rebuilding", "1 while the dedup window is being rebuilt from Kafka (deliveries wait, then 503), else 0.",
			func() float64 { return b2f(d.rebuilding.Load()) }),
		gauge("bridge_dedup_rebuild_read_records", "Records read so far by the dedup rebuild from Kafka.",
			func() float64 { return float64(d.read.Load()) }),
		gauge("bridge_dedup_rebuild_records", "Records the dedup rebuild from Kafka has to read in all.",
			func() float64 { return float64(d.total.Load()) }),
	)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// stop ends the background work and waits for it.
func (d *dedupState) stop() {
	if d.cancel != nil {
		d.cancel()
	}
	d.wg.Wait()
}

// close waits for Redis's marks in flight, within ctx, or saves the memory store's last
// snapshot; after the producer has settled every record, so that each accepted id is in.
func (d *dedupState) close(ctx context.Context) error {
	if d.redis == nil {
		d.writeSnapshot()
		return nil
	}
	return d.redis.Close(ctx)
}
