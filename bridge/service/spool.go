package service

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/bridge/dedup"
	"github.com/socialbridge/bridge/bridge/ingress"
	"github.com/socialbridge/bridge/bridge/producer"
	"github.com/socialbridge/bridge/bridge/spool"
	"github.com/socialbridge/bridge/internal/kafkaconn"
	"github.com/socialbridge/bridge/internal/topics"
)

// spoolState is the bridge's spool (bridge/spool), when a source spools, and the work around
// it: the dedup store told again of the spooled ids after a restart (remark), then the
// drainer; and the verifier of entries spooled without a dedup reservation.
type spoolState struct {
	sp *spool.Spool
	// cl is the drainer's client (producer.DrainOptions): its records wait for Kafka as long
	// as it takes, apart from the ingress's buffer.
	cl       *kgo.Client
	sources  []string
	remarked chan struct{} // closed once the dedup store remembers the ids read back
	// pendingMarks are the ids read back that Redis is yet to be told of (runSpool).
	pendingMarks []spool.Mark
}

// The spool's background work: how many ids read back are reserved in Redis at once, and the
// longest wait between the attempts of what must eventually succeed (creating the topics,
// reconciling with Kafka, telling Redis).
const (
	remarkWorkers     = 32
	reconcileMaxRetry = 30 * time.Second
)

// openSpool opens spool.dir when a source spools.
func (s *Service) openSpool() error {
	names := s.cfg.SpoolingSources()
	if len(names) == 0 {
		if s.cfg.Spool.Dir != "" {
			s.log.Info("spool.dir is set but no source spools (sources[].spool, spool.horizon_below)")
		}
		return nil
	}
	cl, err := kgo.NewClient(producer.DrainOptions(s.cfg.Kafka)...)
	if err != nil {
		return fmt.Errorf("spool's kafka client: %w", err)
	}
	sp, err := spool.Open(s.cfg.Spool.Dir, spool.Options{MaxBytes: s.cfg.Spool.MaxBytes, Sources: names, Log: s.log})
	if err != nil {
		cl.Close()
		return err
	}
	s.spool = &spoolState{sp: sp, cl: cl, sources: names, remarked: make(chan struct{})}
	s.metrics.Registry.MustRegister(sp.Collectors()...)
	s.log.Info("spooling", "dir", s.cfg.Spool.Dir, "max_bytes", s.cfg.Spool.MaxBytes, "sources", names)
	return nil
}

// remarkSpooled has the dedup store remember the ids the spool read back (but those spooled
// unverified) as seen, since the store may have lost them with the process: the memory store
// before it opens, Redis in the background (runSpool; the drainer waits for it).
func (s *Service) remarkSpooled() {
	if s.spool == nil {
		return
	}
	var seen []spool.Mark
	for _, m := range s.spool.sp.Marks() {
		if !m.Unverified {
			seen = append(seen, m)
		}
	}
	switch {
	case s.dedup.redis != nil:
		s.spool.pendingMarks = seen
	case s.dedup.rebuilding.Load():
		s.dedup.beforeOpen = func() {
			markAll(s.dedup.mem, seen)
			close(s.spool.remarked)
		}
	default:
		markAll(s.dedup.mem, seen)
		close(s.spool.remarked)
	}
}

func markAll(st *dedup.Store, marks []spool.Mark) {
	for _, m := range marks {
		st.MarkSeen(m.Source, m.Key, m.At)
	}
}

// remarkRedis reserves each id read back in Redis and marks it seen, unless it is seen
// already, retrying until it succeeds or ctx ends.
func (s *Service) remarkRedis(ctx context.Context, marks []spool.Mark) {
	defer close(s.spool.remarked)
	if len(marks) == 0 {
		return
	}
	wait := 3 * s.cfg.Dedup.Redis.Lease.D()
	work := make(chan spool.Mark)
	var wg sync.WaitGroup
	for range remarkWorkers {
		wg.Go(func() {
			for m := range work {
				s.remarkOne(ctx, m, wait)
			}
		})
	}
	for _, m := range marks {
		select {
		case work <- m:
		case <-ctx.Done():
		}
	}
	close(work)
	wg.Wait()
	s.log.Info("spool: the dedup store remembers the ids read back", "ids", len(marks))
}

func (s *Service) remarkOne(ctx context.Context, m spool.Mark, wait time.Duration) {
	backoff := time.Second
	for ctx.Err() == nil {
		rctx, cancel := context.WithTimeout(ctx, wait)
		dup, done, err := s.dedup.redis.Reserve(rctx, m.Source, m.Key, m.At)
		cancel()
		switch {
		case err == nil && !dup:
			done(true)
			return
		case err == nil:
			return
		}
		s.log.Warn("spool: the dedup store cannot be told of a spooled id yet; retrying", "source", m.Source, "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, reconcileMaxRetry)
	}
}

// runSpool starts the spool's background work, until ctx ends: the verifier, and once the
// dedup store remembers the ids read back, the reconcile with Kafka and then the drainer.
func (s *Service) runSpool(ctx context.Context) {
	if s.spool == nil {
		return
	}
	sp := s.spool.sp
	if s.dedup.redis != nil {
		marks := s.spool.pendingMarks
		s.spool.pendingMarks = nil
		s.watcher.Go(func() { s.remarkRedis(ctx, marks) })
	}
	s.watcher.Go(func() { sp.Verify(ctx, s.dedup.store, s.cfg.Kafka.ProduceTimeout.D()) })
	s.watcher.Go(func() {
		for _, gate := range []chan struct{}{s.spool.remarked, s.topicsReady} {
			select {
			case <-gate:
			case <-ctx.Done():
				return
			}
		}
		if s.reconcile(ctx) {
			sp.Drain(ctx, s.spool.cl, spool.DrainOptions{MaxBytes: int64(s.cfg.Kafka.MaxBufferedBytes / 4)})
		}
	})
}

// reconcile runs the spool's Reconcile until it succeeds; false if ctx ended first.
func (s *Service) reconcile(ctx context.Context) bool {
	opts := kafkaconn.Options(s.cfg.Kafka)
	scan := func(ctx context.Context, topics []string, since time.Time, keep func(*kgo.Record)) error {
		_, err := dedup.Scan(ctx, s.cl, topics, since, opts, keep)
		return err
	}
	backoff := time.Second
	for {
		err := s.spool.sp.Reconcile(ctx, scan)
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		s.log.Warn("spool: the records read back cannot be looked for in kafka yet; retrying", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return false
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, reconcileMaxRetry)
	}
}

// spoolReadiness turns an unready verdict into a ready one while the spool can take records:
// a load balancer must not take away the replica that keeps the events of senders that do
// not retry. The deliveries of the sources that do not spool are answered 503 meanwhile, as
// by every replica when Kafka is down.
func (s *Service) spoolReadiness(r *ingress.Readiness) *ingress.Readiness {
	if r.Ready || s.spool == nil || s.draining.Load() {
		return r
	}
	if err := s.spool.sp.Room(int64(s.cfg.HTTP.MaxBodyBytes)); err != nil {
		r.Detail += "; spool: " + err.Error()
		return r
	}
	return &ingress.Readiness{
		Ready:  true,
		Reason: r.Reason + "; spooling",
		Detail: r.Detail + "; the deliveries of " + strings.Join(s.spool.sources, ", ") + " go to the spool, the other sources' are answered 503",
	}
}

// closeSpool gives the drainer's records in flight kafka.produce_timeout (within ctx) to be
// settled, then closes its client and the spool; after the drainer has returned and the
// ingress's client has settled the records it held (whose outcomes the spool may wait for).
// Kafka being down must not hold a stop for long: what is not settled stays in the spool and is
// looked for in Kafka after the restart.
func (s *Service) closeSpool(ctx context.Context) error {
	if s.spool == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Kafka.ProduceTimeout.D())
	defer cancel()
	err := s.spool.cl.Flush(ctx)
	if err != nil {
		err = fmt.Errorf("drainer flush: %w (its records stay in the spool)", err)
	}
	s.spool.cl.Close()
	return errors.Join(err, s.spool.sp.Close())
}

// ensureOrLater creates the topics when Kafka answers within kafka.produce_timeout; else the
// start goes on without them (ensureTopics creates them once Kafka answers): a bridge
// restarted while Kafka is down must still take the deliveries of its spooling sources.
func (s *Service) ensureOrLater(ctx context.Context, ts []topics.Topic) error {
	ectx, cancel := context.WithTimeout(ctx, s.cfg.Kafka.ProduceTimeout.D())
	defer cancel()
	err := topics.Ensure(ectx, s.cl, s.cfg.Kafka, s.log, ts...)
	if err == nil || ctx.Err() != nil {
		return err
	}
	s.log.Warn("kafka cannot create the topics now; since sources spool, the bridge starts without them: they are created once kafka answers, and deliveries of spooling sources are spooled meanwhile",
		"err", err)
	s.ensureLater = true
	return nil
}

// ensureTopics creates the topics in the background after a start without them, retrying
// until it succeeds or ctx ends.
func (s *Service) ensureTopics(ctx context.Context) {
	if !s.ensureLater {
		return
	}
	k := s.cfg.Kafka
	s.watcher.Go(func() {
		backoff := time.Second
		for {
			err := topics.Ensure(ctx, s.cl, k, s.log, topics.Events(k.TopicPrefix)...)
			if err == nil {
				s.log.Info("the topics are there: the spool may drain")
				close(s.topicsReady)
				return
			}
			if ctx.Err() != nil {
				return
			}
			s.log.Warn("the topics cannot be created yet; retrying", "err", err, "in", backoff)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, reconcileMaxRetry)
		}
	})
}
