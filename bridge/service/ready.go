package service

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/socialbridge/bridge/bridge/ingress"
	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/internal/topics"
)

// Readiness is checked every readyEvery, each check answering within readyTimeout, and
// /readyz answers from the last round, so a probe storm never reaches Kafka. A broker that
// is gone thus shows on /readyz within readyEvery + readyTimeout (3 s).
const (
	readyEvery   = time.Second
	readyTimeout = 2 * time.Second
)

// check is one condition for receiving deliveries. Its error's text is for operators and
// may name brokers; the public answer is its unready reason, or the check's name.
type check struct {
	name string
	run  func(context.Context) error
}

// unready is a check's failure with a reason that anyone may read.
type unready struct {
	reason string
	err    error
}

func (u *unready) Error() string { return u.reason + ": " + u.err.Error() }
func (u *unready) Unwrap() error { return u.err }

// checks are the conditions of readiness, in order; the first failing one is reported.
func (s *Service) checks() []check {
	return []check{{name: "kafka", run: s.kafkaReady}, {name: "dedup", run: s.dedup.check}}
}

// kafkaReady asks a broker for the bridge's topics.
func (s *Service) kafkaReady(ctx context.Context) error {
	missing, err := topics.Missing(ctx, s.cl, event.Topics(s.cfg.Kafka.TopicPrefix)...)
	if err != nil {
		if s.spool != nil {
			s.spool.sp.KafkaDown() // spool at once rather than keep senders waiting
		}
		return &unready{reason: "kafka unreachable", err: err}
	}
	if len(missing) > 0 {
		return &unready{reason: "topics missing", err: errors.New(strings.Join(missing, ", "))}
	}
	return nil
}

func (s *Service) isReady() ingress.Readiness {
	if s.draining.Load() {
		return ingress.Readiness{Reason: "shutting down", Detail: "draining: http.drain_period before the listener closes"}
	}
	if r := s.ready.Load(); r != nil {
		return *r
	}
	return ingress.Readiness{Reason: "starting", Detail: "not checked yet"}
}

func (s *Service) watchReadiness(ctx context.Context) {
	s.checkReady(ctx)
	ticks, stop := s.readyTicker(readyEvery)
	s.watcher.Go(func() {
		defer stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-ticks:
				s.checkReady(ctx)
			}
		}
	})
}

// readyTicker returns the ticks of readiness rounds every d, and what stops them: a ticker, or
// what a test drives them with (Service.tick).
func (s *Service) readyTicker(d time.Duration) (<-chan time.Time, func()) {
	if s.tick != nil {
		return s.tick(d)
	}
	t := time.NewTicker(d)
	return t.C, t.Stop
}

// checkReady runs the checks and keeps their verdict for /readyz.
func (s *Service) checkReady(ctx context.Context) {
	r := &ingress.Readiness{Ready: true}
	for _, c := range s.checks() {
		cctx, cancel := context.WithTimeout(ctx, readyTimeout)
		err := c.run(cctx)
		cancel()
		if err != nil {
			r = &ingress.Readiness{Reason: publicReason(c.name, err), Detail: fmt.Sprintf("%s: %v", c.name, err)}
			break
		}
	}
	if ctx.Err() != nil {
		return // stopping: the checks were cut short, not failed
	}
	r = s.spoolReadiness(r)
	if prev := s.ready.Load(); prev == nil || prev.Ready != r.Ready || prev.Reason != r.Reason {
		s.log.Info("readiness changed", "ready", r.Ready, "reason", r.Detail)
	}
	s.ready.Store(r)
}

func publicReason(name string, err error) string {
	var u *unready
	if errors.As(err, &u) {
		return u.reason
	}
	return name + " not ready"
}
